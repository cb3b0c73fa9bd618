//! Opening PostgreSQL: the `--store postgres://USER@HOST:PORT/DB[?…]` URL made
//! into the pool's connection manager. The connection is plain TCP unless the
//! URL asks `sslmode=require`. Then it is TLS through rustls. The server must
//! prove itself against the web PKI roots, the system's roots, or the CA file
//! that `sslrootcert=PATH` names (a PEM file; libpq spells it the same), as
//! managed databases with their own CA need. The password comes from the URL,
//! or from `PGPASSWORD` (libpq's variable) when the URL has none, so it need not
//! be written into a configuration file. No message here carries the password:
//! they name the server as `HOST:PORT/DB`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::NoTls;
use tokio_postgres::config::{Config, Host, SslMode};

use crate::error::{Error, Result};

/// How long opening a connection may take when the URL does not say
/// (`connect_timeout`): an unreachable server is reported, not waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The parameter naming a CA file, which tokio-postgres does not know and so
/// is taken out of the URL before it parses it.
const ROOT_CERT_PARAM: &str = "sslrootcert";

/// The environment variable a password comes from when the URL has none.
const PASSWORD_ENV: &str = "PGPASSWORD";

/// A connection manager for the URL, and the server as `HOST:PORT/DB`.
pub(super) fn manager(url: &str) -> Result<(Manager, String)> {
    let (url, root_cert) = take_param(url, ROOT_CERT_PARAM);
    let mut config = Config::from_str(&url).map_err(|e| {
        invalid(format!(
            "not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DB"
        ))
    })?;
    if config.get_user().is_none() {
        return Err(invalid(
            "the PostgreSQL URL names no user; expected postgres://USER@HOST:PORT/DB",
        ));
    }
    if config.get_password().is_none()
        && let Some(password) = std::env::var_os(PASSWORD_ENV)
    {
        config.password(password.as_encoded_bytes());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let target = describe(&config);
    let recycling = || ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match config.get_ssl_mode() {
        SslMode::Require => {
            let tls = tls(root_cert.as_deref())?;
            Manager::from_config(config, tls, recycling())
        }
        _ if root_cert.is_some() => {
            return Err(invalid(
                "sslrootcert needs sslmode=require (without it the connection is not encrypted)",
            ));
        }
        _ => Manager::from_config(config, NoTls, recycling()),
    };
    Ok((manager, target))
}

/// The TLS connector: rustls with the web PKI roots, the system's roots and
/// the operator's CA file, if any.
fn tls(root_cert: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // A system root that does not parse is skipped: the others still serve.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| invalid(format!("{ROOT_CERT_PARAM}={path}: {e}")))?;
        if certs.is_empty() {
            return Err(invalid(format!(
                "{ROOT_CERT_PARAM}={path}: no PEM certificate in the file"
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("{ROOT_CERT_PARAM}={path}: {e}")))?;
        }
    }
    // ring, the crypto library lettre and redis already use here; rustls
    // marks ring's provider deprecated for its lack of post-quantum key
    // exchange, which PostgreSQL servers do not offer yet either.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::store_permanent(format!("setting up TLS for PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The URL without the query parameter `name`, and that parameter's value
/// (percent-decoded), if it was there.
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, v)) if key == name => {
                value = Some(percent_decode(v));
                false
            }
            _ => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, value)
}

/// `%2F` and the like back to their bytes; a malformed escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `HOST:PORT/DB` of a connection config, for messages.
pub(super) fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("{host}:{port}/{db}")
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        setting: "store",
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_is_taken_out_of_the_url_and_decoded() {
        let (url, ca) = take_param(
            "postgres://u@h:5432/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem",
            ROOT_CERT_PARAM,
        );
        assert_eq!(url, "postgres://u@h:5432/db?sslmode=require");
        assert_eq!(ca.as_deref(), Some("/etc/ca.pem"));
        let (url, ca) = take_param("postgres://u@h/db?sslrootcert=/x.pem", ROOT_CERT_PARAM);
        assert_eq!(
            (url.as_str(), ca.as_deref()),
            ("postgres://u@h/db", Some("/x.pem"))
        );
        let (url, ca) = take_param("postgres://u@h/db", ROOT_CERT_PARAM);
        assert_eq!((url.as_str(), ca), ("postgres://u@h/db", None));
    }

    #[test]
    fn a_ca_file_without_tls_is_refused_rather_than_ignored() {
        let err = manager("postgres://u@127.0.0.1:5432/db?sslrootcert=/etc/ssl/ca.pem")
            .expect_err("refused");
        assert!(err.to_string().contains("sslmode=require"), "{err}");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let err =
            manager("postgres://u@127.0.0.1:5432/db?sslmode=require&sslrootcert=/no/such.pem")
                .expect_err("refused");
        assert!(err.to_string().contains("/no/such.pem"), "{err}");
    }

    #[test]
    fn messages_name_the_server_never_the_password() {
        let (_, target) =
            manager("postgres://u:hunter2.secret@127.0.0.1:5433/fleet").expect("parses");
        assert_eq!(target, "127.0.0.1:5433/fleet");
    }
}
