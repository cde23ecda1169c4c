//! Support for the web config tests: a CA and certificates made in the test (rcgen), an
//! in-process exporter started with a web config, and a small HTTP/1.1 client over rustls
//! that also reports the certificate the server presented.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicator_exporter::diagnostic::Diagnostics;
use indicator_exporter::http::limits::Limits;
use indicator_exporter::{run_on, Settings};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::sync::oneshot;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn config() -> PathBuf {
    Path::new(ROOT).join("config.toml")
}

/// A certificate authority that issues server and client certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM and as rustls takes them.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Issued {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
    /// Writes `NAME.crt` and `NAME.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) {
        std::fs::write(dir.join(format!("{name}.crt")), &self.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), &self.key_pem).unwrap();
    }
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    fn issue(&self, sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose, serial: u64) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server certificate for localhost, 127.0.0.1 and ::1 with this serial number.
    pub fn server(&self, serial: u64) -> Issued {
        let sans = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
            SanType::IpAddress("::1".parse().unwrap()),
        ];
        self.issue(sans, ExtendedKeyUsagePurpose::ServerAuth, serial)
    }

    /// A client certificate with one DNS SAN.
    pub fn client(&self, dns: &str) -> Issued {
        let sans = vec![SanType::DnsName(dns.try_into().unwrap())];
        self.issue(sans, ExtendedKeyUsagePurpose::ClientAuth, 7)
    }

    /// A client certificate with the given SANs.
    pub fn client_with(&self, sans: Vec<SanType>) -> Issued {
        self.issue(sans, ExtendedKeyUsagePurpose::ClientAuth, 8)
    }
}

/// An exporter running in this process with a web config, stopped on drop.
pub struct WebServer {
    pub addrs: Vec<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), Diagnostics>>>,
}

impl WebServer {
    /// Serves `config.toml` on 127.0.0.1:0 with `web` as the web config, lifecycle on.
    pub fn start(web: Option<&Path>) -> WebServer {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        WebServer::start_on(vec![l], web)
    }

    pub fn start_on(listeners: Vec<std::net::TcpListener>, web: Option<&Path>) -> WebServer {
        WebServer::try_start_on(listeners, web).unwrap_or_else(|e| panic!("start-up failed: {e}"))
    }

    /// [`WebServer::start`] with `--config.watch`.
    pub fn start_watching(web: &Path) -> WebServer {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        WebServer::launch(vec![l], &config(), Some(web), true, Limits::default())
            .unwrap_or_else(|e| panic!("start-up failed: {e}"))
    }

    /// Starts the server; Err with the start-up errors if it stops before serving.
    pub fn try_start_on(
        listeners: Vec<std::net::TcpListener>,
        web: Option<&Path>,
    ) -> Result<WebServer, Diagnostics> {
        WebServer::launch(listeners, &config(), web, false, Limits::default())
    }

    /// A server of the dataset `config_file` with the given HTTP limits, on 127.0.0.1:0.
    pub fn start_with_limits(config_file: &Path, web: Option<&Path>, limits: Limits) -> WebServer {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        WebServer::launch(vec![l], config_file, web, false, limits)
            .unwrap_or_else(|e| panic!("start-up failed: {e}"))
    }

    fn launch(
        listeners: Vec<std::net::TcpListener>,
        config_file: &Path,
        web: Option<&Path>,
        watch: bool,
        web_limits: Limits,
    ) -> Result<WebServer, Diagnostics> {
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let settings = Settings {
            config_file: config_file.to_path_buf(),
            telemetry_path: "/metrics".into(),
            enable_lifecycle: true,
            watch,
            limits: Default::default(),
            web_config_file: web.map(Path::to_path_buf),
            web_limits,
            shard: Default::default(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listeners = listeners
                    .into_iter()
                    .map(|l| tokio::net::TcpListener::from_std(l).unwrap())
                    .collect();
                run_on(settings, listeners, async {
                    let _ = rx.await;
                })
                .await
            })
        });
        let mut server = WebServer {
            addrs,
            shutdown: Some(tx),
            thread: Some(thread),
        };
        // Serving once any HTTP answer comes back: a 400 from a TLS port to plain HTTP, a
        // 401 from a port with basic auth, a 200 otherwise.
        let started = crate::common::poll_until(
            "the server to answer or stop",
            Duration::from_secs(30),
            || {
                if server.thread.as_ref().is_some_and(|t| t.is_finished()) {
                    let result = server.thread.take().unwrap().join().unwrap();
                    return Some(Err(
                        result.expect_err("a server that stopped by itself failed")
                    ));
                }
                raw(server.addrs[0], b"GET /-/ready HTTP/1.0\r\n\r\n")
                    .starts_with("HTTP/1.")
                    .then_some(Ok(()))
            },
        );
        started.map(|()| server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `bytes` on a fresh TCP connection and returns everything read until the server
/// closes it (empty if the connection failed), within 15 s.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A TLS client trusting `ca`, optionally presenting a client certificate, offering `alpn`.
pub fn client(
    ca: &CertificateDer<'static>,
    cert: Option<&Issued>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => builder
            .with_client_auth_cert(vec![c.der.clone()], c.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A resumed session shows the certificate of the session it resumes: every request here
    // is a full handshake, so it shows the certificate served now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One HTTPS response, and what the TLS session showed.
#[derive(Debug)]
pub struct Https {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The certificate the server presented.
    pub server_cert: CertificateDer<'static>,
    pub alpn: Option<Vec<u8>>,
}

impl Https {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GET `path` over TLS (HTTP/1.1, `Connection: close`) with extra header lines; Err with the
/// TLS or I/O error when the server refuses the handshake.
pub fn get(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Https, String> {
    send(addr, config, "GET", path, headers)
}

pub fn send(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Https, String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    // A close without close_notify after a whole response is still a response.
    if let Err(e) = tls.read_to_end(&mut out) {
        if out.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
            return Err(e.to_string());
        }
    }
    let server_cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no server certificate")?
        .clone()
        .into_owned();
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response in {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Https {
        status,
        headers,
        body: body.to_string(),
        server_cert,
        alpn,
    })
}

/// Only the TLS handshake; the negotiated ALPN protocol.
pub fn handshake(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> Result<Option<Vec<u8>>, String> {
    let mut tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn =
        rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(conn.alpn_protocol().map(<[u8]>::to_vec))
}

/// The serial number of a DER certificate, as its DER INTEGER bytes.
pub fn serial(cert: &CertificateDer<'_>) -> Vec<u8> {
    // Certificate SEQUENCE > tbsCertificate SEQUENCE > [0] version, INTEGER serial.
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let len0 = b[1] as usize;
        let (len, hdr) = if len0 < 0x80 {
            (len0, 2)
        } else {
            let n = len0 & 0x7f;
            (
                b[2..2 + n].iter().fold(0, |a, &x| a << 8 | x as usize),
                2 + n,
            )
        };
        (b[0], &b[hdr..hdr + len], &b[hdr + len..])
    }
    let (_, cert, _) = tlv(cert.as_ref());
    let (_, tbs, _) = tlv(cert);
    let (tag, version, rest) = tlv(tbs);
    let serial = if tag == 0xa0 { tlv(rest).1 } else { version };
    serial.to_vec()
}

/// A web config file in `dir` with `text`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("web.yml");
    std::fs::write(&p, text).unwrap();
    p
}
