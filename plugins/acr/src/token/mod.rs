//! The call that turns the Entra ID token into the registry credential: an ACR refresh token.
//!
//! 1. [`challenge`]: `GET <base>/v2/` must answer 401 with a Bearer challenge naming `realm`
//!    and `service`. The realm decides where the Entra token goes, so it is checked first:
//!    its host must be the login server, or another ACR login server (geo-replicas answer
//!    for each other), and its scheme https. With `endpoints.registry` set (tests,
//!    private-link proxies), every registry request goes to that base instead, and the realm
//!    may also name that base.
//! 2. [`exchange`]: the Entra token is posted to the realm's `scheme://host` +
//!    `/oauth2/exchange`, with `grant_type=access_token_refresh_token`, `service`, `tenant`
//!    (when [`AadToken::tenant`] names one, even empty), and the Entra token as
//!    `access_token` and, as the Go plugin and `az acr login` send it, `refresh_token`. The
//!    answer's `refresh_token` is the credential.

pub mod challenge;
pub mod exchange;

use keyring_api::Secret;

use crate::config::Settings;
use crate::error::Error;
use crate::http::Http;
use crate::identity::AadToken;

/// The ACR refresh token for `aad` at `login_server`: the challenge, then the exchange.
pub fn refresh_token(
    settings: &Settings,
    http: &Http,
    login_server: &str,
    aad: &AadToken,
) -> Result<Secret<String>, Error> {
    let directive = challenge::challenge(settings, http, login_server)?;
    exchange::exchange(
        http,
        &directive,
        login_server,
        aad.tenant.as_deref(),
        &aad.token,
    )
}
