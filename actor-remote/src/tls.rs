//! TLS and QUIC configuration for node-to-node connections, in both authentication modes.
//!
//! [`NodeTls`] holds this node's certificate and the way it judges a peer's; it hands out the
//! `quinn` server and client configurations. Every node presents a certificate in both roles
//! (client authentication is always on), speaks TLS 1.3 only, offers the ALPN [`ALPN`], and uses
//! the `ring` crypto provider explicitly, never a process-wide default.
//!
//! # Modes
//!
//! - [`Credentials::SharedSecret`] (development): a fresh self-signed certificate is made at start
//!   and any peer certificate is accepted at the TLS layer. That is sound because TLS is not
//!   what authenticates the peer here: the handshake proof of [`crate::auth`] is an HMAC, keyed by
//!   the cluster secret, over the exporter keying material of this very connection. A man in the
//!   middle who terminates TLS towards both nodes holds two connections with two different
//!   exporters, cannot forward a proof from one to the other, and cannot make one without the
//!   secret; so nothing is dispatched to or from him. TLS still gives confidentiality and
//!   integrity, and the handshake signatures are still checked (the peer holds the key of the
//!   certificate it shows).
//! - [`Credentials::MutualTls`] (production): certificates issued by a cluster CA. The server
//!   requires a client certificate that chains to the CA (`WebPkiClientVerifier`); the client
//!   requires the same of the server. The client does *not* check the server's name: nodes are
//!   dialed by whatever address a seed list or the membership gossip gives, and membership in the
//!   cluster is exactly "holds a certificate from the cluster CA", the same rule the server side
//!   applies to clients. Dial with [`SERVER_NAME`]. Node certificates need both the `serverAuth`
//!   and `clientAuth` extended key usages, since every node is both.
//!
//! # Example
//!
//! ```
//! use actor_remote::tls::{Credentials, NodeTls, TransportLimits};
//!
//! let tls = NodeTls::new(&Credentials::SharedSecret { secret: "a long random string".into() })?;
//! let limits = TransportLimits::default();
//! let server = tls.server_config(&limits)?; // for quinn::Endpoint::server
//! let client = tls.client_config(&limits)?; // for Endpoint::connect_with(client, addr, SERVER_NAME)
//! # Ok::<(), actor_remote::tls::TlsError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::auth::ClusterSecret;

/// The ALPN protocol every node offers and requires.
pub const ALPN: &[u8] = b"actor-remote/1";

/// The server name to dial with (`Endpoint::connect(addr, SERVER_NAME)`).
///
/// It only fills the TLS SNI field: neither mode checks it (see the module docs). It is also the
/// subject name of the self-signed development certificate.
pub const SERVER_NAME: &str = "actor-remote";

/// QUIC transport settings shared by both ends of every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportLimits {
    /// A connection with no traffic for this long is closed. Default: 10 s.
    pub idle_timeout: Duration,
    /// Interval of keep-alive packets on an otherwise quiet connection; keep it well below
    /// `idle_timeout`. Default: 2 s.
    pub keep_alive_interval: Duration,
    /// Bidirectional streams the peer may have open at once. Default: 64.
    pub max_concurrent_bidi_streams: u32,
    /// Unidirectional streams the peer may have open at once (none are used today). Default: 0.
    pub max_concurrent_uni_streams: u32,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            idle_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(2),
            max_concurrent_bidi_streams: 64,
            max_concurrent_uni_streams: 0,
        }
    }
}

impl TransportLimits {
    /// The settings a connection starts with, before the peer has proven it belongs: one
    /// bidirectional stream (for the hello), no unidirectional ones, and a small receive
    /// window, so an unauthenticated peer can make the node buffer a hello and little else.
    /// [`TransportLimits::open_after_auth`] raises them once both hellos verify.
    fn transport_config(&self) -> Result<Arc<quinn::TransportConfig>, TlsError> {
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout)
            .map_err(|_| TlsError::IdleTimeoutTooLarge(self.idle_timeout))?;
        let mut config = quinn::TransportConfig::default();
        config
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keep_alive_interval))
            .max_concurrent_bidi_streams(1u32.into())
            .max_concurrent_uni_streams(0u32.into())
            .receive_window(PRE_AUTH_RECEIVE_WINDOW.into());
        Ok(Arc::new(config))
    }

    /// Opens an authenticated connection up to its working limits: the configured stream
    /// counts and a receive window for real traffic.
    pub fn open_after_auth(&self, conn: &quinn::Connection) {
        conn.set_max_concurrent_bi_streams(self.max_concurrent_bidi_streams.into());
        conn.set_max_concurrent_uni_streams(self.max_concurrent_uni_streams.into());
        conn.set_receive_window(AUTHENTICATED_RECEIVE_WINDOW.into());
    }
}

/// Connection-wide receive window before authentication: room for a hello (16 KiB at most)
/// with margin.
const PRE_AUTH_RECEIVE_WINDOW: u32 = 64 * 1024;
/// Connection-wide receive window once authenticated: enough for many busy lanes at once.
const AUTHENTICATED_RECEIVE_WINDOW: u32 = 64 * 1024 * 1024;
/// Handshakes in progress at once; further connection attempts are refused until some end.
const MAX_INCOMING: usize = 256;

/// How nodes authenticate each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Development: self-signed certificates, peers proven by the cluster secret (see
    /// [`crate::auth`]).
    SharedSecret {
        /// The secret all nodes of the cluster share.
        secret: ClusterSecret,
    },
    /// Production: certificates issued by a cluster CA, verified in both directions.
    MutualTls {
        /// PEM file with this node's certificate chain, leaf first.
        cert_path: PathBuf,
        /// PEM file with this node's private key (PKCS#8, PKCS#1 or SEC1).
        key_path: PathBuf,
        /// PEM file with the cluster CA certificate(s).
        ca_path: PathBuf,
    },
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot load {what} from {path}: {source}")]
    Pem {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("no certificate found in {0}")]
    NoCertificates(PathBuf),
    /// The CA file holds a certificate that cannot be a trust anchor.
    #[error("invalid CA certificate in {path}: {source}")]
    InvalidCa {
        /// The CA file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// The client verifier could not be built from the CA.
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
    /// The crypto provider lacks the cipher suite QUIC needs for its initial packets.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// A certificate could not be generated.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The idle timeout is beyond what QUIC can express.
    #[error("idle timeout of {0:?} is too large for QUIC")]
    IdleTimeoutTooLarge(Duration),
}

/// This node's TLS identity and peer policy, ready to hand out quinn configurations.
///
/// Build it once at start: in shared-secret mode each build makes a new certificate, and in
/// mutual-TLS mode it reads the files.
pub struct NodeTls {
    provider: Arc<CryptoProvider>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// `None`: accept any peer certificate (shared-secret mode).
    roots: Option<Arc<RootCertStore>>,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("certificates", &self.cert_chain.len())
            .field("key", &format_args!("<redacted>"))
            .field(
                "mode",
                &if self.roots.is_some() {
                    "mutual TLS"
                } else {
                    "shared secret"
                },
            )
            .finish()
    }
}

impl NodeTls {
    /// Generates (shared secret) or loads (mutual TLS) this node's certificate.
    ///
    /// # Errors
    /// [`TlsError::Generate`] if no certificate can be made; for mutual TLS, [`TlsError::Pem`] and
    /// [`TlsError::NoCertificates`] for unreadable files and [`TlsError::InvalidCa`] for a CA
    /// certificate that cannot be a trust anchor.
    pub fn new(credentials: &Credentials) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        match credentials {
            Credentials::SharedSecret { .. } => {
                let generated = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])?;
                let key = PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der());
                Ok(NodeTls {
                    provider,
                    cert_chain: vec![generated.cert.der().clone()],
                    key: key.into(),
                    roots: None,
                })
            }
            Credentials::MutualTls {
                cert_path,
                key_path,
                ca_path,
            } => {
                let cert_chain = load_certs(cert_path, "certificate chain")?;
                let key =
                    PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::Pem {
                        what: "private key",
                        path: key_path.clone(),
                        source,
                    })?;
                let mut roots = RootCertStore::empty();
                for ca in load_certs(ca_path, "CA certificate")? {
                    roots.add(ca).map_err(|source| TlsError::InvalidCa {
                        path: ca_path.clone(),
                        source,
                    })?;
                }
                Ok(NodeTls {
                    provider,
                    cert_chain,
                    key,
                    roots: Some(Arc::new(roots)),
                })
            }
        }
    }

    /// The configuration for accepting connections.
    ///
    /// # Errors
    /// [`TlsError::Rustls`] if the key does not fit the certificate, [`TlsError::Verifier`] for an
    /// unusable CA, [`TlsError::IdleTimeoutTooLarge`] for an idle timeout QUIC cannot express.
    pub fn server_config(&self, limits: &TransportLimits) -> Result<quinn::ServerConfig, TlsError> {
        let verifier: Arc<dyn ClientCertVerifier> = match &self.roots {
            Some(roots) => {
                WebPkiClientVerifier::builder_with_provider(roots.clone(), self.provider.clone())
                    .build()?
            }
            None => Arc::new(AnyClientCert(self.provider.clone())),
        };
        let mut tls = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let mut config =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
        config.transport_config(limits.transport_config()?);
        config.max_incoming(MAX_INCOMING);
        Ok(config)
    }

    /// The configuration for dialing other nodes (connect with [`SERVER_NAME`]).
    ///
    /// # Errors
    /// As [`NodeTls::server_config`].
    pub fn client_config(&self, limits: &TransportLimits) -> Result<quinn::ClientConfig, TlsError> {
        let verifier: Arc<dyn ServerCertVerifier> = match &self.roots {
            Some(roots) => Arc::new(CaSignedServerCert {
                provider: self.provider.clone(),
                roots: roots.clone(),
            }),
            None => Arc::new(AnyServerCert(self.provider.clone())),
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.cert_chain.clone(), self.key.clone_key())?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
        config.transport_config(limits.transport_config()?);
        Ok(config)
    }
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates(path.to_owned()));
    }
    Ok(certs)
}

/// Shared-secret mode, client side: any server certificate is accepted; the handshake proof
/// authenticates the peer (see the module docs). Handshake signatures are still verified.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Shared-secret mode, server side: a client certificate is required but any is accepted.
#[derive(Debug)]
struct AnyClientCert(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Mutual-TLS mode, client side: the server's chain must lead to the cluster CA (with the
/// `serverAuth` usage and a valid date); its name is not checked (see the module docs).
#[derive(Debug)]
struct CaSignedServerCert {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
}

impl ServerCertVerifier for CaSignedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A throwaway CA and node certificates, as PEM text. For tests and tools only.
pub struct TestPki {
    /// The CA certificate (the `ca_path` file of [`Credentials::MutualTls`]).
    pub ca_cert_pem: String,
    /// One certificate per node name asked for, in the same order.
    pub nodes: Vec<TestNodeCert>,
}

/// A node certificate issued by a [`TestPki`] CA.
pub struct TestNodeCert {
    /// The node name; also the certificate's DNS subject alternative name.
    pub name: String,
    /// The certificate (the `cert_path` file).
    pub cert_pem: String,
    /// Its private key, PKCS#8 (the `key_path` file).
    pub key_pem: String,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki")
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TestNodeCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestNodeCert")
            .field("name", &self.name)
            .field("key_pem", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Generates a throwaway CA and one certificate per node name, for tests and tools only.
///
/// Node certificates carry the node name as DNS name and both `serverAuth` and `clientAuth`
/// usages, as [`Credentials::MutualTls`] requires. The CA key is dropped: no further certificate
/// can be issued from it.
///
/// # Errors
/// [`TlsError::Generate`] if a key or certificate cannot be made (for example a node name that is
/// not a valid DNS name).
pub fn generate_test_ca(ca_name: &str, node_names: &[&str]) -> Result<TestPki, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let mut nodes = Vec::with_capacity(node_names.len());
    for &name in node_names {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
        nodes.push(TestNodeCert {
            name: name.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        });
    }
    Ok(TestPki {
        ca_cert_pem: ca_cert.pem(),
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, Hello, HelloReply, Role, make_hello,
        verify_hello,
    };
    use std::net::{Ipv4Addr, SocketAddr};

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn loopback() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    fn shared_secret() -> Credentials {
        Credentials::SharedSecret {
            secret: ClusterSecret::new("tls-test-secret"),
        }
    }

    /// Writes a PKI's files into a fresh temp dir and returns credentials for each node.
    fn write_pki(pki: &TestPki) -> (tempfile::TempDir, Vec<Credentials>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &pki.ca_cert_pem).expect("write ca");
        let creds = pki
            .nodes
            .iter()
            .map(|node| {
                let cert_path = dir.path().join(format!("{}.pem", node.name));
                let key_path = dir.path().join(format!("{}.key", node.name));
                std::fs::write(&cert_path, &node.cert_pem).expect("write cert");
                std::fs::write(&key_path, &node.key_pem).expect("write key");
                Credentials::MutualTls {
                    cert_path,
                    key_path,
                    ca_path: ca_path.clone(),
                }
            })
            .collect();
        (dir, creds)
    }

    fn server(creds: &Credentials) -> quinn::Endpoint {
        let tls = NodeTls::new(creds).expect("server tls");
        let config = tls
            .server_config(&TransportLimits::default())
            .expect("server config");
        quinn::Endpoint::server(config, loopback()).expect("bind server")
    }

    fn client_config(creds: &Credentials) -> quinn::ClientConfig {
        NodeTls::new(creds)
            .expect("client tls")
            .client_config(&TransportLimits::default())
            .expect("client config")
    }

    /// Connects a client with `client` credentials to `server`; returns both sides' outcomes.
    /// A refused client may see its handshake complete before the server's refusal arrives
    /// (TLS 1.3 verifies the client certificate last), so it then waits for the close.
    async fn connect(
        server: &quinn::Endpoint,
        client: &Credentials,
    ) -> (
        Result<quinn::Connection, quinn::ConnectionError>,
        Result<quinn::Connection, quinn::ConnectionError>,
    ) {
        let addr = server.local_addr().expect("server addr");
        let endpoint = quinn::Endpoint::client(loopback()).expect("bind client");
        let connecting = endpoint
            .connect_with(client_config(client), addr, SERVER_NAME)
            .expect("connect starts");
        let accepted = async {
            let incoming = server.accept().await.expect("an incoming connection");
            incoming.await
        };
        let (client_side, server_side) =
            tokio::time::timeout(TIMEOUT, async { tokio::join!(connecting, accepted) })
                .await
                .expect("handshake finishes in time");
        (client_side, server_side)
    }

    fn exporter(conn: &quinn::Connection) -> [u8; EXPORTER_LEN] {
        let mut out = [0; EXPORTER_LEN];
        conn.export_keying_material(&mut out, EXPORTER_LABEL, EXPORTER_CONTEXT)
            .expect("exporter");
        out
    }

    #[test]
    fn both_configs_build_in_shared_secret_mode() {
        let tls = NodeTls::new(&shared_secret()).expect("tls");
        tls.server_config(&TransportLimits::default())
            .expect("server config");
        tls.client_config(&TransportLimits::default())
            .expect("client config");
    }

    #[test]
    fn both_configs_build_in_mutual_tls_mode() {
        let pki = generate_test_ca("test ca", &["node-a"]).expect("pki");
        let (_dir, creds) = write_pki(&pki);
        let tls = NodeTls::new(&creds[0]).expect("tls");
        tls.server_config(&TransportLimits::default())
            .expect("server config");
        tls.client_config(&TransportLimits::default())
            .expect("client config");
    }

    #[test]
    fn missing_certificate_file_names_the_file() {
        let creds = Credentials::MutualTls {
            cert_path: "/nonexistent/node.pem".into(),
            key_path: "/nonexistent/node.key".into(),
            ca_path: "/nonexistent/ca.pem".into(),
        };
        let err = NodeTls::new(&creds).expect_err("missing files");
        assert!(err.to_string().contains("/nonexistent/node.pem"), "{err}");
    }

    #[test]
    fn file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").expect("write");
        let creds = Credentials::MutualTls {
            cert_path: empty.clone(),
            key_path: empty.clone(),
            ca_path: empty.clone(),
        };
        assert!(matches!(
            NodeTls::new(&creds),
            Err(TlsError::NoCertificates(path)) if path == empty
        ));
    }

    #[test]
    fn idle_timeout_beyond_quic_range_is_refused() {
        let tls = NodeTls::new(&shared_secret()).expect("tls");
        let limits = TransportLimits {
            idle_timeout: Duration::from_secs(u64::MAX / 1000),
            ..TransportLimits::default()
        };
        assert!(matches!(
            tls.server_config(&limits),
            Err(TlsError::IdleTimeoutTooLarge(_))
        ));
    }

    #[test]
    fn debug_output_hides_private_keys() {
        let pki = generate_test_ca("test ca", &["node-a"]).expect("pki");
        let key_body = pki.nodes[0]
            .key_pem
            .lines()
            .nth(1)
            .expect("key line")
            .to_owned();
        assert!(!format!("{pki:?}").contains(&key_body));
        let tls = NodeTls::new(&shared_secret()).expect("tls");
        assert!(format!("{tls:?}").contains("<redacted>"));
    }

    #[tokio::test]
    async fn shared_secret_peers_connect_and_prove_membership_over_the_exporter() {
        let server_endpoint = server(&shared_secret());
        let (client, accepted) = connect(&server_endpoint, &shared_secret()).await;
        let client = client.expect("client connects");
        let accepted = accepted.expect("server accepts");
        assert_eq!(
            accepted.handshake_data().and_then(|d| {
                d.downcast::<quinn::crypto::rustls::HandshakeData>()
                    .ok()
                    .and_then(|d| d.protocol)
            }),
            Some(ALPN.to_vec())
        );

        // Both ends derive the same keying material, so each can verify the other's proof.
        let (client_exporter, server_exporter) = (exporter(&client), exporter(&accepted));
        assert_eq!(client_exporter, server_exporter);
        let secret = ClusterSecret::new("tls-test-secret");
        let dialer = make_hello(&secret, &client_exporter, "c", "a", 1, Role::Dialer);

        let dialer_side = async {
            let (mut send, mut recv) = client.open_bi().await.expect("open stream");
            send.write_all(&dialer.to_bytes().expect("encode"))
                .await
                .expect("send hello");
            send.finish().expect("finish");
            let reply = recv.read_to_end(4096).await.expect("read reply");
            let hello = HelloReply::from_bytes(&reply)
                .expect("reply parses")
                .into_result()
                .expect("accepted");
            verify_hello(&hello, "c", &secret, &client_exporter, Role::Acceptor)
        };
        let acceptor_side = async {
            let (mut send, mut recv) = accepted.accept_bi().await.expect("accept stream");
            let bytes = recv.read_to_end(4096).await.expect("read hello");
            let hello = Hello::from_bytes(&bytes).expect("hello parses");
            let peer = verify_hello(&hello, "c", &secret, &server_exporter, Role::Dialer);
            let own = make_hello(&secret, &server_exporter, "c", "b", 1, Role::Acceptor);
            let reply = HelloReply::Accepted(own).to_bytes().expect("encode");
            send.write_all(&reply).await.expect("send reply");
            send.finish().expect("finish");
            // Keep the stream open until the dialer has read everything.
            let _ = send.stopped().await;
            peer
        };
        let (dialer_saw, acceptor_saw) =
            tokio::time::timeout(TIMEOUT, async { tokio::join!(dialer_side, acceptor_side) })
                .await
                .expect("handshake in time");
        assert_eq!(dialer_saw.expect("acceptor proven").node, "b");
        assert_eq!(acceptor_saw.expect("dialer proven").node, "a");
    }

    #[tokio::test]
    async fn each_connection_has_its_own_exporter() {
        let server_endpoint = server(&shared_secret());
        let (first, _first_accepted) = connect(&server_endpoint, &shared_secret()).await;
        let (second, _second_accepted) = connect(&server_endpoint, &shared_secret()).await;
        assert_ne!(
            exporter(&first.expect("first connects")),
            exporter(&second.expect("second connects"))
        );
    }

    #[tokio::test]
    async fn mutual_tls_accepts_a_node_of_the_same_ca() {
        let pki = generate_test_ca("cluster ca", &["node-a", "node-b"]).expect("pki");
        let (_dir, creds) = write_pki(&pki);
        let server_endpoint = server(&creds[0]);
        let (client, accepted) = connect(&server_endpoint, &creds[1]).await;
        client.expect("client connects");
        accepted.expect("server accepts");
    }

    /// `creds` with the CA file of `other`: a node of one CA that trusts another CA.
    fn trusting(creds: &Credentials, other: &Credentials) -> Credentials {
        match (creds, other) {
            (
                Credentials::MutualTls {
                    cert_path,
                    key_path,
                    ..
                },
                Credentials::MutualTls { ca_path, .. },
            ) => Credentials::MutualTls {
                cert_path: cert_path.clone(),
                key_path: key_path.clone(),
                ca_path: ca_path.clone(),
            },
            _ => panic!("mutual TLS credentials expected"),
        }
    }

    /// Our node, and a rogue node whose certificate comes from another CA but which trusts ours.
    fn ours_and_rogue() -> (Vec<tempfile::TempDir>, Credentials, Credentials) {
        let ours = generate_test_ca("cluster ca", &["node-a"]).expect("pki");
        let theirs = generate_test_ca("rogue ca", &["node-x"]).expect("pki");
        let (ours_dir, ours) = write_pki(&ours);
        let (theirs_dir, theirs) = write_pki(&theirs);
        let rogue = trusting(&theirs[0], &ours[0]);
        (vec![ours_dir, theirs_dir], ours[0].clone(), rogue)
    }

    #[tokio::test]
    async fn mutual_tls_server_refuses_a_client_of_another_ca() {
        let (_dirs, ours, rogue) = ours_and_rogue();
        let server_endpoint = server(&ours);
        let (client, accepted) = connect(&server_endpoint, &rogue).await;
        assert!(accepted.is_err(), "server must refuse the rogue client");
        let closed = match client {
            Err(err) => err,
            Ok(conn) => tokio::time::timeout(TIMEOUT, conn.closed())
                .await
                .expect("refusal reaches the client"),
        };
        assert!(
            !matches!(closed, quinn::ConnectionError::LocallyClosed),
            "{closed}"
        );
    }

    #[tokio::test]
    async fn mutual_tls_client_refuses_a_server_of_another_ca() {
        let (_dirs, ours, rogue) = ours_and_rogue();
        let server_endpoint = server(&rogue);
        let (client, accepted) = connect(&server_endpoint, &ours).await;
        assert!(client.is_err(), "client must refuse the rogue server");
        assert!(accepted.is_err());
    }
}
