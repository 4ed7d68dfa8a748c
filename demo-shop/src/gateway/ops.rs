//! Operations routes: health, the cluster as this node sees it, and metrics.

use actor_remote::MemberState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::Gateway;
use crate::services::ServiceKind;

/// `GET /health`: this node, the services it runs, and the other members.
#[derive(Debug, Serialize)]
pub(super) struct Health {
    /// `ok`, or `degraded` when a service of this process is down.
    status: &'static str,
    node: String,
    mode: &'static str,
    services: Vec<LocalService>,
    peers: Vec<Member>,
}

#[derive(Debug, Serialize)]
struct LocalService {
    name: &'static str,
    alive: bool,
    restarts: u64,
}

/// `GET /cluster`: the members and where each name lives.
#[derive(Debug, Serialize)]
pub(super) struct ClusterView {
    mode: &'static str,
    node: String,
    members: Vec<Member>,
    /// The shop's services, as this node finds them.
    services: Vec<ServicePlace>,
    /// Every name served in the cluster, and its node (empty in a monolith).
    placements: Vec<Placement>,
}

#[derive(Debug, Serialize)]
struct Member {
    node: String,
    /// The node's transport address; none in a monolith.
    addr: Option<String>,
    /// `alive`, `suspect`, `down` or `left`.
    state: MemberState,
    this_node: bool,
}

#[derive(Debug, Serialize)]
struct ServicePlace {
    name: &'static str,
    /// The node it runs on, if this node can find it.
    node: Option<String>,
    local: bool,
    alive: bool,
}

#[derive(Debug, Serialize)]
struct Placement {
    name: String,
    node: String,
}

fn mode(gw: &Gateway) -> &'static str {
    if gw.node.is_some() {
        "cluster"
    } else {
        "monolith"
    }
}

/// Every member, this node first.
fn members(gw: &Gateway) -> Vec<Member> {
    let Some(node) = &gw.node else {
        return vec![Member {
            node: gw.system.node_name().to_owned(),
            addr: None,
            state: MemberState::Alive,
            this_node: true,
        }];
    };
    let mut members: Vec<Member> = node
        .members()
        .into_iter()
        .map(|m| Member {
            node: m.name,
            addr: Some(m.addr.to_string()),
            state: m.state,
            this_node: m.is_self,
        })
        .collect();
    members.sort_by_key(|m| !m.this_node);
    members
}

pub(super) async fn health(State(gw): State<Gateway>) -> impl IntoResponse {
    let services: Vec<LocalService> = gw
        .hosted
        .iter()
        .map(|(kind, supervisor)| LocalService {
            name: kind.name(),
            alive: kind.locate(&gw.system).is_some_and(|l| l.local && l.alive),
            restarts: supervisor.restarts(),
        })
        .collect();
    let healthy = services.iter().all(|s| s.alive);
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        node: gw.system.node_name().to_owned(),
        mode: mode(&gw),
        services,
        peers: members(&gw).into_iter().filter(|m| !m.this_node).collect(),
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub(super) async fn cluster(State(gw): State<Gateway>) -> Json<ClusterView> {
    let services = ServiceKind::ALL
        .into_iter()
        .map(|kind| {
            let found = kind.locate(&gw.system);
            ServicePlace {
                name: kind.name(),
                node: found.as_ref().map(|l| l.node.clone()),
                local: found.as_ref().is_some_and(|l| l.local),
                alive: found.as_ref().is_some_and(|l| l.alive),
            }
        })
        .collect();
    let placements = gw.node.as_ref().map_or_else(Vec::new, |node| {
        node.placements()
            .into_iter()
            .map(|(name, node)| Placement { name, node })
            .collect()
    });
    Json(ClusterView {
        mode: mode(&gw),
        node: gw.system.node_name().to_owned(),
        members: members(&gw),
        services,
        placements,
    })
}

pub(super) async fn metrics(State(gw): State<Gateway>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&gw),
    )
}
