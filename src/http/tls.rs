//! `tls_server_config` -> a rustls server config: certificate and key (re-read when their
//! files change), TLS versions, cipher suites and curves by their Go names, client
//! certificates by exporter-toolkit's `client_auth_type`, and `client_allowed_sans`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite,
};
use tracing::{info, warn};

use crate::http::web_config::{Ctx, TlsServerConfig};
use crate::http::yaml::{self, Node, Pos};

/// A TLS setup ready to accept connections.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// One line for the logs: versions and client authentication.
    pub summary: String,
}

/// exporter-toolkit's `client_auth_type` values (`RequireClientCert` is its old name of
/// `RequireAnyClientCert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

pub const CLIENT_AUTH_TYPES: [&str; 5] = [
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
];

impl ClientAuth {
    fn parse(s: &str) -> Option<ClientAuth> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }
    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// Go's names of the cipher suites `tls.CipherSuites()` lists (the ones exporter-toolkit
/// accepts); [`tls12_suite`] says which rustls serves.
const GO_CIPHER_SUITES: [&str; 17] = [
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// The rustls TLS 1.2 suite of a Go cipher suite name: `Err(true)` for a TLS 1.3 name (not
/// configurable), `Err(false)` for a name Go knows and rustls does not serve.
fn tls12_suite(name: &str) -> Option<Result<SupportedCipherSuite, bool>> {
    use ring::cipher_suite as cs;
    let suite = match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Some(Err(true))
        }
        _ if GO_CIPHER_SUITES.contains(&name) => return Some(Err(false)),
        _ => return None,
    };
    Some(Ok(suite))
}

/// The rustls key exchange group of a Go curve name: `Err(())` for a curve Go knows that
/// this build (rustls with ring) does not offer.
fn kx_group(name: &str) -> Option<Result<&'static dyn SupportedKxGroup, ()>> {
    Some(match name {
        "X25519" => Ok(ring::kx_group::X25519),
        "CurveP256" => Ok(ring::kx_group::SECP256R1),
        "CurveP384" => Ok(ring::kx_group::SECP384R1),
        "CurveP521" | "X25519MLKEM768" => Err(()),
        _ => return None,
    })
}

const CURVES: [&str; 5] = [
    "CurveP256",
    "CurveP384",
    "CurveP521",
    "X25519",
    "X25519MLKEM768",
];

fn tls_version(s: &str) -> Option<u8> {
    Some(match s {
        "TLS10" => 10,
        "TLS11" => 11,
        "TLS12" => 12,
        "TLS13" => 13,
        _ => return None,
    })
}

/// Builds the TLS config of a `tls_server_config` that turns TLS on; every problem goes to
/// `cx`, positioned at the key it is about.
pub fn build(
    c: &TlsServerConfig,
    node: &Node,
    section_pos: Pos,
    http2: bool,
    cx: &mut Ctx,
) -> Option<Tls> {
    let before = cx.problems.len();
    let key = build_key(c, node, section_pos, cx);
    let auth = client_auth(c, node, cx);
    let roots = client_roots(c, node, cx);
    check_client_ca(c, node, auth, cx);
    let versions = versions(c, node, cx);
    let mut provider = ring::default_provider();
    cipher_suites(c, node, &mut provider, cx);
    curves(c, node, &mut provider, before, cx);
    if cx.problems.len() != before {
        return None;
    }
    let (key, auth, versions) = (key?, auth?, versions?);
    let provider = Arc::new(provider);
    let verifier = client_verifier(c, node, auth, roots, &provider, cx)?;
    let builder =
        match ServerConfig::builder_with_provider(provider).with_protocol_versions(&versions) {
            Ok(b) => b,
            Err(e) => {
                cx.problem(
                    section_pos,
                    format!("cannot serve TLS with these settings: {e}"),
                );
                return None;
            }
        };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(key));
    config.ignore_client_order = c.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Some(Tls {
        config: Arc::new(config),
        summary: summary(c, auth, &versions),
    })
}

/// `client_auth_type`, parsed; `None` (reported) when unknown.
fn client_auth(c: &TlsServerConfig, node: &Node, cx: &mut Ctx) -> Option<ClientAuth> {
    let auth = ClientAuth::parse(&c.client_auth_type);
    if auth.is_none() {
        cx.problem(
            node.pos_of("client_auth_type"),
            format!(
                "unknown client_auth_type `{}`, expected {}",
                c.client_auth_type,
                yaml::one_of(&CLIENT_AUTH_TYPES)
            ),
        );
    }
    auth
}

/// Reports a client CA and `client_auth_type` that do not go together: a verifying type
/// without a CA, or a CA (or allowed SANs) with no certificate asked for.
fn check_client_ca(c: &TlsServerConfig, node: &Node, auth: Option<ClientAuth>, cx: &mut Ctx) {
    let has_ca = !c.client_ca_file.is_empty() || !c.client_ca.is_empty();
    match auth {
        Some(a) if a.verifies() && !has_ca => cx.problem(
            node.pos_of("client_auth_type"),
            format!(
                "client_auth_type `{}` verifies client certificates against a CA, expected `client_ca_file` (or `client_ca`) too",
                c.client_auth_type
            ),
        ),
        Some(ClientAuth::NoClientCert) if has_ca => {
            let k = if c.client_ca_file.is_empty() { "client_ca" } else { "client_ca_file" };
            cx.problem(
                node.key_pos(k),
                format!("{k} is set but client_auth_type is NoClientCert, expected a client_auth_type that asks for certificates, such as RequireAndVerifyClientCert"),
            )
        }
        Some(ClientAuth::NoClientCert) if !c.client_allowed_sans.is_empty() => cx.problem(
            node.key_pos("client_allowed_sans"),
            "client_allowed_sans is set but client_auth_type is NoClientCert, so no certificate is asked for, expected RequireAndVerifyClientCert",
        ),
        _ => {}
    }
}

/// Restricts `provider`'s TLS 1.2 suites to `cipher_suites` (TLS 1.3 ones always stay), when
/// set; reports names that are unknown or not served.
fn cipher_suites(c: &TlsServerConfig, node: &Node, provider: &mut CryptoProvider, cx: &mut Ctx) {
    if c.cipher_suites.is_empty() {
        return;
    }
    let mut tls12 = Vec::new();
    for (i, name) in c.cipher_suites.iter().enumerate() {
        let pos = node.item_pos("cipher_suites", i);
        match tls12_suite(name) {
            Some(Ok(s)) => tls12.push(s),
            // Go ignores TLS 1.3 names here: 1.3 suites are always all enabled.
            Some(Err(true)) => {}
            Some(Err(false)) => cx.problem(
                pos,
                format!(
                    "cipher suite {name} is not served by this exporter (rustls has no CBC or RSA key exchange suites), expected {}",
                    yaml::one_of(&served_suites())
                ),
            ),
            None => cx.problem(
                pos,
                format!(
                    "unknown cipher suite `{name}`, expected {} (Go's names)",
                    yaml::one_of(&served_suites())
                ),
            ),
        }
    }
    let tls13 = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied();
    provider.cipher_suites = tls13.chain(tls12).collect();
}

/// Restricts `provider`'s key exchange groups to `curve_preferences`, in that order, when
/// set; reports unknown names, and a list of which this build offers none (unless problems
/// were reported since `before`).
fn curves(
    c: &TlsServerConfig,
    node: &Node,
    provider: &mut CryptoProvider,
    before: usize,
    cx: &mut Ctx,
) {
    if c.curve_preferences.is_empty() {
        return;
    }
    let mut groups = Vec::new();
    for (i, name) in c.curve_preferences.iter().enumerate() {
        let pos = node.item_pos("curve_preferences", i);
        match kx_group(name) {
            Some(Ok(g)) => groups.push(g),
            Some(Err(())) => cx.warn(
                pos,
                format!(
                    "curve {name} is not offered by this build (rustls with ring); the others are"
                ),
            ),
            None => cx.problem(
                pos,
                format!("unknown curve `{name}`, expected {}", yaml::one_of(&CURVES)),
            ),
        }
    }
    if groups.is_empty() && cx.problems.len() == before {
        cx.problem(
            node.pos_of("curve_preferences"),
            "no curve in curve_preferences is offered by this build, expected X25519, CurveP256 or CurveP384 among them",
        );
    }
    provider.kx_groups = groups;
}

/// The verifier of client certificates `auth` asks for (`Ok(None)`: none asked for),
/// restricted to `client_allowed_sans` when set; `None` (reported) when the CA is unusable.
fn client_verifier(
    c: &TlsServerConfig,
    node: &Node,
    auth: ClientAuth,
    roots: Option<RootCertStore>,
    provider: &Arc<CryptoProvider>,
    cx: &mut Ctx,
) -> Option<Option<Arc<dyn ClientCertVerifier>>> {
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match auth {
        ClientAuth::NoClientCert => None,
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Some(Arc::new(AnyCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                provider: provider.clone(),
            }))
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let roots = Arc::new(roots?);
            let mut b = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            if auth == ClientAuth::VerifyClientCertIfGiven {
                b = b.allow_unauthenticated();
            }
            match b.build() {
                Ok(v) => Some(v),
                Err(e) => {
                    cx.problem(
                        node.pos_of(ca_key(c)),
                        format!("cannot use the client CA: {e}"),
                    );
                    return None;
                }
            }
        }
    };
    Some(match verifier {
        Some(inner) if !c.client_allowed_sans.is_empty() => Some(Arc::new(AllowedSans {
            inner,
            allowed: c.client_allowed_sans.clone(),
        })
            as Arc<dyn ClientCertVerifier>),
        v => v,
    })
}

/// The line the logs show of a TLS setup: versions and client authentication.
fn summary(
    c: &TlsServerConfig,
    auth: ClientAuth,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> String {
    let names: Vec<&str> = versions
        .iter()
        .map(|v| {
            if v.version == rustls::ProtocolVersion::TLSv1_3 {
                "1.3"
            } else {
                "1.2"
            }
        })
        .collect();
    format!(
        "TLS {}, client certificates: {}{}",
        names.join(" and "),
        CLIENT_AUTH_TYPES[auth as usize],
        if c.client_allowed_sans.is_empty() {
            String::new()
        } else {
            format!(" with {} allowed SANs", c.client_allowed_sans.len())
        }
    )
}

fn served_suites() -> Vec<&'static str> {
    GO_CIPHER_SUITES
        .into_iter()
        .filter(|n| matches!(tls12_suite(n), Some(Ok(_))))
        .collect()
}

fn ca_key(c: &TlsServerConfig) -> &'static str {
    if c.client_ca_file.is_empty() {
        "client_ca"
    } else {
        "client_ca_file"
    }
}

/// The TLS versions between min_version and max_version that rustls serves (1.2 and 1.3).
fn versions(
    c: &TlsServerConfig,
    node: &Node,
    cx: &mut Ctx,
) -> Option<Vec<&'static rustls::SupportedProtocolVersion>> {
    let mut read = |key: &str, value: &str, default: u8| {
        if value.is_empty() {
            return Some(default);
        }
        let v = tls_version(value);
        if v.is_none() {
            cx.problem(
                node.pos_of(key),
                format!("unknown {key} `{value}`, expected TLS10, TLS11, TLS12 or TLS13"),
            );
        }
        v
    };
    let min = read("min_version", &c.min_version, 12);
    let max = read("max_version", &c.max_version, 13);
    let (min, max) = (min?, max?);
    if max < 12 {
        cx.problem(
            node.pos_of("max_version"),
            format!("max_version {} is below TLS 1.2, which rustls cannot serve (it serves TLS 1.2 and 1.3 only), expected TLS12 or TLS13", c.max_version),
        );
        return None;
    }
    if min > max {
        cx.problem(
            node.pos_of("min_version"),
            format!(
                "min_version {} is above max_version {}, expected min_version ≤ max_version",
                c.min_version, c.max_version
            ),
        );
        return None;
    }
    if min < 12 {
        cx.warn(
            node.pos_of("min_version"),
            format!("min_version {}: TLS 1.0 and 1.1 are not served (rustls has neither); clients need TLS 1.2 or later", c.min_version),
        );
    }
    let mut out = Vec::new();
    if max >= 13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= 12 {
        out.push(&rustls::version::TLS12);
    }
    Some(out)
}

/// The client CA certificates, from `client_ca_file` (which wins, as in exporter-toolkit) or
/// inline `client_ca`; None when neither is set or they are unusable (reported).
fn client_roots(c: &TlsServerConfig, node: &Node, cx: &mut Ctx) -> Option<RootCertStore> {
    let key = ca_key(c);
    let pos = node.pos_of(key);
    let (pem, what) = if !c.client_ca_file.is_empty() {
        if !c.client_ca.is_empty() {
            cx.warn(node.key_pos("client_ca"), "both client_ca and client_ca_file are set; client_ca_file is used, as exporter-toolkit does");
        }
        let p = cx.resolve(&c.client_ca_file);
        (
            cx.read("client_ca_file", &p, pos)?,
            format!("`{}`", p.display()),
        )
    } else if !c.client_ca.is_empty() {
        (c.client_ca.as_bytes().to_vec(), "client_ca".to_string())
    } else {
        return None;
    };
    let mut roots = RootCertStore::empty();
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        match cert
            .map_err(|e| e.to_string())
            .and_then(|c| roots.add(c).map_err(|e| e.to_string()))
        {
            Ok(()) => found += 1,
            Err(e) => {
                cx.problem(
                    pos,
                    format!("{what} holds a certificate that cannot be used as a client CA: {e}"),
                );
                return None;
            }
        }
    }
    if found == 0 {
        cx.problem(
            pos,
            format!("{what} holds no PEM certificate, expected -----BEGIN CERTIFICATE-----"),
        );
        return None;
    }
    Some(roots)
}

/// The server's certificate and key, checked to match; from files (re-read when they change)
/// or inline PEM.
fn build_key(
    c: &TlsServerConfig,
    node: &Node,
    section_pos: Pos,
    cx: &mut Ctx,
) -> Option<ServerKey> {
    let mut missing = Vec::new();
    if c.cert_file.is_empty() && c.cert.is_empty() {
        missing.push("certificate, expected `cert_file` (or `cert`)");
    }
    if c.key_file.is_empty() && c.key.is_empty() {
        missing.push("private key, expected `key_file` (or `key`)");
    }
    match missing.as_slice() {
        [] => {}
        [one] => {
            cx.problem(section_pos, format!("`tls_server_config` has no {one}"));
            return None;
        }
        _ => {
            cx.problem(section_pos, "`tls_server_config` has no certificate, expected `cert_file` (or `cert`) and `key_file` (or `key`)");
            return None;
        }
    }
    for (file, inline) in [("cert_file", "cert"), ("key_file", "key")] {
        let both = match file {
            "cert_file" => !c.cert_file.is_empty() && !c.cert.is_empty(),
            _ => !c.key_file.is_empty() && !c.key.is_empty(),
        };
        if both {
            cx.warn(
                node.key_pos(inline),
                format!(
                    "both {inline} and {file} are set; {file} is used, as exporter-toolkit does"
                ),
            );
        }
    }
    let cert_pos = node.pos_of(if c.cert_file.is_empty() {
        "cert"
    } else {
        "cert_file"
    });
    let key_pos = node.pos_of(if c.key_file.is_empty() {
        "key"
    } else {
        "key_file"
    });
    let files = Files {
        cert: (!c.cert_file.is_empty()).then(|| cx.resolve(&c.cert_file)),
        key: (!c.key_file.is_empty()).then(|| cx.resolve(&c.key_file)),
    };
    let cert_pem = match &files.cert {
        Some(p) => cx.read("cert_file", p, cert_pos),
        None => Some(c.cert.as_bytes().to_vec()),
    };
    let key_pem = match &files.key {
        Some(p) => cx.read("key_file", p, key_pos),
        None => Some(c.key.as_bytes().to_vec()),
    };
    let (cert_pem, key_pem) = (cert_pem?, key_pem?);
    let cert_name = files
        .cert
        .as_ref()
        .map_or("cert".to_string(), |p| format!("`{}`", p.display()));
    let key_name = files
        .key
        .as_ref()
        .map_or("key".to_string(), |p| format!("`{}`", p.display()));
    match certified_key(&cert_pem, &key_pem, &cert_name, &key_name) {
        Ok(k) => Some(ServerKey {
            current: Mutex::new((files.stamp(), Arc::new(k))),
            files,
        }),
        Err((KeyPart::Cert, msg)) => {
            cx.problem(cert_pos, msg);
            None
        }
        Err((KeyPart::Key, msg)) => {
            cx.problem(key_pos, msg);
            None
        }
    }
}

enum KeyPart {
    Cert,
    Key,
}

fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<CertifiedKey, (KeyPart, String)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| (KeyPart::Cert, format!("{cert_name} is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err((
            KeyPart::Cert,
            format!("{cert_name} holds no PEM certificate, expected -----BEGIN CERTIFICATE-----"),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        (
            KeyPart::Key,
            format!("{key_name} holds no usable PEM private key ({e}), expected -----BEGIN PRIVATE KEY----- (PKCS#8), RSA PRIVATE KEY or EC PRIVATE KEY"),
        )
    })?;
    let provider = ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => (
            KeyPart::Key,
            format!("the private key in {key_name} does not match the certificate in {cert_name}, expected the key the certificate was issued for"),
        ),
        rustls::Error::InvalidCertificate(e) => (
            KeyPart::Cert,
            format!("{cert_name} holds an unusable certificate: {e}"),
        ),
        e => (KeyPart::Key, format!("cannot use the private key in {key_name}: {e}")),
    })
}

/// Where the certificate and key came from: files are watched for changes at each handshake.
#[derive(Debug, Clone)]
struct Files {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Modification time and length of each file, to notice a replaced certificate cheaply.
type Stamp = Vec<Option<(SystemTime, u64)>>;

impl Files {
    fn stamp(&self) -> Stamp {
        [&self.cert, &self.key]
            .into_iter()
            .flatten()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    }
}

/// The server's certificate. When its files change (a renewal), the next handshake re-reads
/// them, as exporter-toolkit does; a pair that does not load (a renewal half written, a key
/// that does not match yet) keeps the last good one in service.
pub struct ServerKey {
    files: Files,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("files", &self.files)
            .finish()
    }
}

impl ServerKey {
    fn refresh(&self) -> Arc<CertifiedKey> {
        // A panic while re-reading the files (in a parser) must not refuse every later
        // handshake: the pair in the lock is whole either way.
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if self.files.cert.is_none() && self.files.key.is_none() {
            return current.1.clone();
        }
        let now = self.files.stamp();
        if now == current.0 {
            return current.1.clone();
        }
        current.0 = now;
        let read = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| crate::read::read_file(p, crate::http::web_config::MAX_FILE_SIZE))
                .transpose()
        };
        let loaded = read(&self.files.cert)
            .and_then(|c| Ok((c, read(&self.files.key)?)))
            .and_then(|(c, k)| {
                // Inline halves never change: only files are re-read.
                let (Some(c), Some(k)) = (c, k) else {
                    return Err("an inline certificate or key cannot change".to_string());
                };
                certified_key(&c, &k, "cert_file", "key_file").map_err(|(_, m)| m)
            });
        match loaded {
            Ok(k) => {
                info!(cert_file = ?self.files.cert, "certificate files changed, serving the new certificate");
                current.1 = Arc::new(k);
            }
            Err(e) => {
                warn!(cert_file = ?self.files.cert, error = %e, "certificate files changed but do not load, still serving the previous certificate")
            }
        }
        current.1.clone()
    }
}

impl ResolvesServerCert for ServerKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.refresh())
    }
}

/// RequestClientCert and RequireAnyClientCert: a certificate is asked for and not verified
/// (Go's semantics); its signature over the handshake still is.
#[derive(Debug)]
struct AnyCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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

/// `client_allowed_sans`: after the policy's own checks, the client certificate must carry
/// one of the allowed names (DNS, IP, e-mail or URI SAN, compared exactly). A client
/// without a certificate is refused, as exporter-toolkit's check refuses it.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = subject_alt_names(end_entity).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        if sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            tracing::debug!(presented = ?sans, "client certificate has none of client_allowed_sans");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One DER element: tag, contents, and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(n)?;
        rest = r;
        bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The DNS, e-mail, URI and IP subject alternative names of a DER certificate, written as Go
/// writes them (IPv4 dotted, IPv6 in RFC 5952 form). None on malformed DER.
pub fn subject_alt_names(cert: &[u8]) -> Option<Vec<String>> {
    const SAN_OID: [u8; 3] = [0x55, 0x1d, 0x11];
    let (0x30, cert, _) = der(cert)? else {
        return None;
    };
    let (0x30, mut tbs, _) = der(cert)? else {
        return None;
    };
    let mut out = Vec::new();
    while !tbs.is_empty() {
        let (tag, content, rest) = der(tbs)?;
        tbs = rest;
        // [3] EXPLICIT Extensions
        if tag != 0xa3 {
            continue;
        }
        let (0x30, mut exts, _) = der(content)? else {
            return None;
        };
        while !exts.is_empty() {
            let (_, ext, rest) = der(exts)?;
            exts = rest;
            let (0x06, oid, mut fields) = der(ext)? else {
                return None;
            };
            if oid != SAN_OID {
                continue;
            }
            let mut value = None;
            while !fields.is_empty() {
                let (tag, content, rest) = der(fields)?;
                fields = rest;
                if tag == 0x04 {
                    value = Some(content);
                }
            }
            let (0x30, mut names, _) = der(value?)? else {
                return None;
            };
            while !names.is_empty() {
                let (tag, content, rest) = der(names)?;
                names = rest;
                match tag {
                    // rfc822Name, dNSName, uniformResourceIdentifier: IA5String
                    0x81 | 0x82 | 0x86 => {
                        out.push(String::from_utf8_lossy(content).into_owned());
                    }
                    0x87 => out.push(match content.len() {
                        4 => Ipv4Addr::from(<[u8; 4]>::try_from(content).ok()?).to_string(),
                        16 => {
                            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(content).ok()?);
                            match ip.to_ipv4_mapped() {
                                Some(v4) => IpAddr::V4(v4).to_string(),
                                None => ip.to_string(),
                            }
                        }
                        _ => return None,
                    }),
                    _ => {}
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_of_every_kind_are_read_as_go_writes_them() {
        let mut params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        params.subject_alt_names.extend([
            rcgen::SanType::IpAddress("10.1.2.3".parse().unwrap()),
            rcgen::SanType::IpAddress("2001:db8::1".parse().unwrap()),
            rcgen::SanType::Rfc822Name("ops@example.org".try_into().unwrap()),
            rcgen::SanType::URI("spiffe://example.org/scraper".try_into().unwrap()),
        ]);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_alt_names(cert.der()).unwrap(),
            [
                "client.example",
                "10.1.2.3",
                "2001:db8::1",
                "ops@example.org",
                "spiffe://example.org/scraper"
            ]
        );
        let no_sans = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(subject_alt_names(no_sans.der()).unwrap().is_empty());
        assert!(subject_alt_names(b"\x30\x05junk").is_none());
        assert!(subject_alt_names(&cert.der()[..40]).is_none());
    }

    #[test]
    fn go_cipher_names_map_to_rustls() {
        assert!(matches!(
            tls12_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            Some(Ok(s)) if s == ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        ));
        assert!(matches!(
            tls12_suite("TLS_AES_128_GCM_SHA256"),
            Some(Err(true))
        ));
        assert!(matches!(
            tls12_suite("TLS_RSA_WITH_AES_128_CBC_SHA"),
            Some(Err(false))
        ));
        assert!(tls12_suite("TLS_NOPE").is_none());
        assert_eq!(served_suites().len(), 6);
    }
}
