//! The registry side: the `/v2/` challenge and the `/oauth2/exchange` of an Entra ID token
//! for an ACR refresh token.
//!
//! `GET <base>/v2/` must answer 401 with a Bearer challenge naming `realm` and `service`.
//! The exchange is posted to the realm's `scheme://host` + `/oauth2/exchange`, with
//! `grant_type=access_token_refresh_token`, `service`, `tenant` (when known), and the Entra
//! token as `access_token` and, as the Go plugin and `az acr login` send it, `refresh_token`.
//!
//! The realm decides where the Entra token goes, so it is checked first: its host must be the
//! login server, or another ACR login server (geo-replicas answer for each other), and its
//! scheme https. With `endpoints.registry` set (tests, private-link proxies), every registry
//! request goes to that base instead, and the realm may also name that base.

use keyring_api::Secret;

use crate::challenge::find_bearer;
use crate::config::{split_url, Settings};
use crate::error::{error_code, Error, Stage};
use crate::host::is_login_server;
use crate::http::{transient, Body, Call, Http, Route};

/// What the challenge told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Where to post the exchange.
    pub exchange_url: String,
    /// The `service` to name.
    pub service: String,
}

/// The registry base URL for a login server.
pub fn base_url(settings: &Settings, login_server: &str) -> String {
    match &settings.registry_base {
        Some(b) => b.as_url(),
        None => format!("https://{login_server}"),
    }
}

/// `GET /v2/` and the checks on its challenge.
pub fn challenge(settings: &Settings, http: &Http, login_server: &str) -> Result<Directive, Error> {
    let url = format!("{}/v2/", base_url(settings, login_server));
    let reply = http.send(&Call {
        stage: Stage::Challenge,
        url: &url,
        query: &[],
        headers: &[],
        body: Body::Get,
        route: Route::Proxied,
        retry_status: transient,
        hint: "can the node reach the registry (DNS, private endpoint, firewall, proxy)?",
    })?;
    let fail = |problem: String| Error::Response {
        stage: Stage::Challenge,
        url: url.clone(),
        problem,
    };
    if reply.status != 401 {
        let hint = match reply.status {
            200 => format!("{login_server} did not ask for credentials; is it an ACR login server?"),
            404 => format!("{login_server} has no registry API; check the registry name"),
            403 => format!("{login_server} refused the client: check the registry's network rules (firewall, private endpoint)"),
            _ => "the registry failed; retry later".into(),
        };
        return Err(Error::Status {
            stage: Stage::Challenge,
            url,
            status: reply.status,
            code: error_code(reply.body.expose()),
            hint: format!("expected 401 with a Bearer challenge; {hint}"),
        });
    }
    let bearer = find_bearer(reply.www_authenticate.iter().map(String::as_str))
        .ok_or_else(|| fail("the 401 has no parsable Bearer WWW-Authenticate challenge; is this an ACR login server?".into()))?;
    let (Some(realm), Some(service)) = (bearer.param("realm"), bearer.param("service")) else {
        return Err(fail(
            "the Bearer challenge lacks realm or service; is this an ACR login server?".into(),
        ));
    };
    if service.is_empty() {
        return Err(fail("the Bearer challenge has an empty service".into()));
    }
    let exchange_url =
        exchange_url(settings, login_server, realm).map_err(|e| fail(e.to_string()))?;
    Ok(Directive {
        exchange_url,
        service: service.to_string(),
    })
}

/// Why a challenge's realm is not where the Entra ID token may go (the registry's answer is
/// unusable: [`Error::Response`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmRefused {
    /// The realm is not an `http(s)://` URL.
    #[error("the challenge realm is not an http(s) URL")]
    NotAUrl,
    /// An ACR login server's realm over plain http.
    #[error(
        "the challenge realm of {login_server} is not https; refusing to send a token in clear"
    )]
    NotHttps {
        /// The login server that sent the challenge.
        login_server: String,
    },
    /// A realm host that is neither the login server, another ACR login server, nor the
    /// configured `endpoints.registry`.
    #[error("the challenge realm's host {host} is not {login_server} nor an ACR login server; refusing to send the Entra ID token there")]
    ForeignHost {
        /// The realm's host, lower-cased.
        host: String,
        /// The login server that sent the challenge.
        login_server: String,
    },
}

/// Where the exchange goes, after checking the realm; see the module docs.
pub fn exchange_url(
    settings: &Settings,
    login_server: &str,
    realm: &str,
) -> Result<String, RealmRefused> {
    let (scheme, authority, _) = split_url(realm).ok_or(RealmRefused::NotAUrl)?;
    let authority = authority.to_ascii_lowercase();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    // No port: ACR serves on 443 only.
    let acr_realm = !authority.contains(':')
        && (authority == login_server || is_login_server(&authority, &settings.registry_suffixes));
    match &settings.registry_base {
        Some(base) if acr_realm || authority == base.authority => {
            Ok(format!("{}/oauth2/exchange", base.as_url()))
        }
        None if acr_realm && scheme == "https" => {
            Ok(format!("https://{authority}/oauth2/exchange"))
        }
        None if acr_realm => Err(RealmRefused::NotHttps {
            login_server: login_server.to_string(),
        }),
        _ => Err(RealmRefused::ForeignHost {
            host: host.to_string(),
            login_server: login_server.to_string(),
        }),
    }
}

/// `POST /oauth2/exchange`: the Entra ID token for an ACR refresh token.
pub fn exchange(
    http: &Http,
    directive: &Directive,
    login_server: &str,
    tenant: Option<&str>,
    aad_token: &Secret<String>,
) -> Result<Secret<String>, Error> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "access_token_refresh_token"),
        ("service", &directive.service),
        ("access_token", aad_token.expose()),
        ("refresh_token", aad_token.expose()),
    ];
    if let Some(t) = tenant {
        form.push(("tenant", t));
    }
    let url = directive.exchange_url.as_str();
    let reply = http.send(&Call {
        stage: Stage::Exchange,
        url,
        query: &[],
        headers: &[],
        body: Body::Form(&form),
        route: Route::Proxied,
        retry_status: transient,
        hint: "can the node reach the registry?",
    })?;
    drop(form);
    if reply.status != 200 {
        let hint = match reply.status {
            400 | 401 => format!("ACR refused the Entra ID token: give the identity the AcrPull role on {login_server} (or a token from the registry's tenant), and check that the registry allows Entra ID authentication"),
            403 => format!("{login_server} refused the client: check the registry's network rules and that the identity may pull"),
            404 => format!("{login_server} has no token exchange endpoint; is it an ACR login server?"),
            429 => "throttled by ACR; the kubelet will retry".into(),
            _ => "ACR failed; retry later".into(),
        };
        return Err(Error::Status {
            stage: Stage::Exchange,
            url: url.into(),
            status: reply.status,
            code: error_code(reply.body.expose()),
            hint,
        });
    }
    #[derive(serde::Deserialize)]
    struct ExchangeResponse {
        refresh_token: Option<Secret<String>>,
    }
    let parsed: ExchangeResponse =
        serde_json::from_slice(reply.body.expose()).map_err(|_| Error::Response {
            stage: Stage::Exchange,
            url: url.into(),
            problem: "the 200 response is not the expected JSON (a proxy in between?)".into(),
        })?;
    parsed
        .refresh_token
        .filter(|t| !t.expose().is_empty())
        .ok_or_else(|| Error::Response {
            stage: Stage::Exchange,
            url: url.into(),
            problem: "the response has no refresh_token".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings(registry: Option<&str>) -> Settings {
        Config {
            endpoints: crate::config::Endpoints {
                registry: registry.map(Into::into),
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn realm_checks() {
        let s = settings(None);
        let login = "myacr.azurecr.io";
        assert_eq!(
            exchange_url(&s, login, "https://myacr.azurecr.io/oauth2/token").unwrap(),
            "https://myacr.azurecr.io/oauth2/exchange"
        );
        assert_eq!(
            exchange_url(&s, login, "https://MyAcr.azurecr.io/oauth2/token?x=1").unwrap(),
            "https://myacr.azurecr.io/oauth2/exchange"
        );
        // A geo-replica or DNL login server of the same cloud may be the realm.
        assert_eq!(
            exchange_url(
                &s,
                "myacr.eastus.geo.azurecr.io",
                "https://myacr.azurecr.io/oauth2/token"
            )
            .unwrap(),
            "https://myacr.azurecr.io/oauth2/exchange"
        );
        for bad in [
            "https://evil.example/oauth2/token",
            "https://myacr.azurecr.io.evil.example/oauth2/token",
            "https://myacr.azurecr.io:8443/oauth2/token",
            "http://myacr.azurecr.io/oauth2/token",
            "myacr.azurecr.io/oauth2/token",
            "ftp://myacr.azurecr.io/",
        ] {
            assert!(exchange_url(&s, login, bad).is_err(), "{bad}");
        }
        let e = exchange_url(&s, login, "https://evil.example/x").unwrap_err();
        assert_eq!(
            e,
            RealmRefused::ForeignHost {
                host: "evil.example".into(),
                login_server: login.into()
            }
        );
        assert!(
            e.to_string().contains("evil.example") && e.to_string().contains("refusing"),
            "{e}"
        );
        assert_eq!(
            exchange_url(&s, login, "http://myacr.azurecr.io/oauth2/token"),
            Err(RealmRefused::NotHttps {
                login_server: login.into()
            })
        );
        assert_eq!(
            exchange_url(&s, login, "myacr.azurecr.io/oauth2/token"),
            Err(RealmRefused::NotAUrl)
        );
    }

    #[test]
    fn realm_with_registry_override() {
        let s = settings(Some("http://127.0.0.1:5000"));
        let login = "myacr.azurecr.io";
        assert_eq!(base_url(&s, login), "http://127.0.0.1:5000");
        for ok in [
            "https://myacr.azurecr.io/oauth2/token",
            "http://127.0.0.1:5000/oauth2/token",
        ] {
            assert_eq!(
                exchange_url(&s, login, ok).unwrap(),
                "http://127.0.0.1:5000/oauth2/exchange",
                "{ok}"
            );
        }
        assert!(exchange_url(&s, login, "http://127.0.0.1:5001/oauth2/token").is_err());
        assert!(exchange_url(&s, login, "https://evil.example/oauth2/token").is_err());
        assert_eq!(base_url(&settings(None), login), "https://myacr.azurecr.io");
    }
}
