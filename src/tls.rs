//! TLS for the agent channel (and HTTPS for browsers): the server's own key and certificate,
//! created at first start and kept in `DATA_DIR/tls/`, and a client configuration that
//! trusts exactly one certificate, named by its SHA-256 pin (the 1Panel CVE-2025-54424
//! class: an agent must refuse a server with another key). The only module importing
//! rustls and rcgen; crypto is `ring` (no OpenSSL, no C toolchain beyond `cc` for ring).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;

/// The server's TLS identity.
#[derive(Clone)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key_pem: String,
    /// Hex SHA-256 of the certificate (DER): what enrollment tokens carry.
    pub pin: String,
    /// `sha256//BASE64` of the public key (SPKI), as curl's `--pinnedpubkey` takes it.
    pub curl_pin: String,
}

/// Errors about the server identity files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write the TLS identity in {dir}: {reason}")]
    Files { dir: String, reason: String },
    #[error(
        "the TLS identity in {dir} is damaged ({reason}): restore it from a backup (agents pin it), or delete the folder to create a new one and re-enroll every agent"
    )]
    Damaged { dir: String, reason: String },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Hex SHA-256 of a certificate.
pub fn cert_pin(der: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(der))
}

impl Identity {
    /// Loads `DIR/tls/server.{crt,key}` or creates them (key mode 0600).
    pub fn load_or_create(data_dir: &Path) -> Result<Identity, TlsError> {
        let dir = data_dir.join("tls");
        let files = |e: &dyn std::fmt::Display| TlsError::Files {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        };
        let damaged = |e: &dyn std::fmt::Display| TlsError::Damaged {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        };
        let crt = dir.join("server.crt");
        let key = dir.join("server.key");
        if !crt.exists() && !key.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| files(&e))?;
            let kp = rcgen::KeyPair::generate().map_err(|e| TlsError::Setup(e.to_string()))?;
            let mut params =
                rcgen::CertificateParams::new(vec!["omp".to_string(), "localhost".to_string()])
                    .map_err(|e| TlsError::Setup(e.to_string()))?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "OMP server");
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2124, 1, 1);
            let cert = params
                .self_signed(&kp)
                .map_err(|e| TlsError::Setup(e.to_string()))?;
            crate::auth::write_secret_file(&key, &kp.serialize_pem()).map_err(|e| files(&e))?;
            std::fs::write(&crt, cert.pem()).map_err(|e| files(&e))?;
        }
        let crt_pem = std::fs::read(&crt).map_err(|e| files(&e))?;
        let key_pem = std::fs::read_to_string(&key).map_err(|e| files(&e))?;
        let cert = CertificateDer::from_pem_slice(&crt_pem).map_err(|e| damaged(&e))?;
        let kp = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| damaged(&e))?;
        let spki = sha2::Sha256::digest(kp.public_key_der());
        Ok(Identity {
            pin: cert_pin(&cert),
            curl_pin: format!("sha256//{}", data_encoding::BASE64.encode(&spki)),
            cert,
            key_pem,
        })
    }

    /// A rustls server configuration presenting this identity (HTTP/1.1 only).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// A client configuration that accepts exactly the certificate whose SHA-256 is `pin`.
pub fn pinned_client_config(pin: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let p = provider();
    let verifier = Arc::new(PinVerifier {
        pin: pin.to_string(),
        provider: p.clone(),
    });
    let cfg = rustls::ClientConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A server name for the handshake; the pin, not the name, decides trust.
pub fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("omp").expect("static name"))
}

/// Accepts TLS connections with the server identity (used by `api::serve`).
#[derive(Clone)]
pub struct Acceptor(tokio_rustls::TlsAcceptor);

impl Acceptor {
    pub fn new(identity: &Identity) -> Result<Acceptor, TlsError> {
        Ok(Acceptor(tokio_rustls::TlsAcceptor::from(
            identity.server_config()?,
        )))
    }

    pub async fn accept(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        self.0.accept(tcp).await
    }
}

#[derive(Debug)]
struct PinVerifier {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = cert_pin(end_entity);
        let ok: bool = subtle::ConstantTimeEq::ct_eq(got.as_bytes(), self.pin.as_bytes()).into();
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate {got} does not match the pinned {}: this is not the OMP server the token came from",
                self.pin
            )))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reloaded() {
        let d = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(d.path()).unwrap();
        let b = Identity::load_or_create(d.path()).unwrap();
        assert_eq!(a.pin, b.pin);
        assert_eq!(a.pin.len(), 64);
        assert!(a.curl_pin.starts_with("sha256//"));
        a.server_config().unwrap();
        pinned_client_config(&a.pin).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("tls/server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(d.path().join("tls/server.crt"), "garbage").unwrap();
        let err = Identity::load_or_create(d.path()).err().unwrap();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
