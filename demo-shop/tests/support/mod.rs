//! Helpers shared by the demo shop's tests: a shop on 127.0.0.1 and JSON over HTTP.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use demo_shop::Shop;
use serde_json::Value;

/// An HTTP answer: status, JSON body (`null` when not JSON) and headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

/// A JSON client for one shop.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(shop: &Shop) -> Self {
        Self::for_url(&shop.base_url().expect("the shop runs a gateway"))
    }

    pub fn for_url(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        Client {
            http,
            base: base.to_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path))).await
    }

    /// GETs `path` as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("an HTTP answer");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn post_with_key(&self, path: &str, body: Value, key: &str) -> Answer {
        let request = self.http.post(self.url(path)).json(&body);
        self.send(request.header("idempotency-key", key)).await
    }

    /// Posts `body` as it is, with `content_type` if given.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, content_type: Option<&str>) -> Answer {
        let mut request = self.http.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.http.delete(self.url(path))).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            headers,
        }
    }

    /// Registers a user; returns its id.
    pub async fn register(&self, email: &str) -> u64 {
        let answer = self
            .post("users", serde_json::json!({"email": email, "name": "Test"}))
            .await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["id"].as_u64().expect("an id")
    }

    /// Stock by product id.
    pub async fn stock(&self) -> Vec<(String, u64)> {
        let answer = self.get("products").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        answer
            .body
            .as_array()
            .expect("a list")
            .iter()
            .map(|p| {
                let id = p["id"].as_str().expect("an id").to_owned();
                (id, p["stock"].as_u64().expect("a stock"))
            })
            .collect()
    }
}
