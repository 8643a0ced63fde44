//! Workload identity federation for the node: an `external_account` file (checked by
//! [`crate::identity::external_account`]) turned into an access token the way Google's auth
//! libraries do it (AIP-4117):
//!
//! 1. the subject token from the file's credential source: a file, a URL or a program
//!    ([`source`]), or a signed AWS `GetCallerIdentity` request ([`aws`]);
//! 2. `POST token_url` (Google STS), form-encoded as those libraries send it: `grant_type`
//!    token-exchange, `audience`, `scope` cloud-platform, `requested_token_type`
//!    access_token, `subject_token`, `subject_token_type` as the file says; `client_id` and
//!    `client_secret` as HTTP Basic; `options` `{"userProject": …}` for a workforce pool
//!    without a client. The answer's `access_token` and `expires_in` are the result, unless:
//! 3. with `service_account_impersonation_url`, that URL's `generateAccessToken` with the STS
//!    token as bearer, for the cloud-platform scope and `token_lifetime_seconds`: its
//!    `accessToken` and `expireTime`.
//!
//! One client for every step ([`federation::Client`]: rustls on ring with the system's roots,
//! `HTTPS_PROXY` / `NO_PROXY` for `https://`, plain `http://` dialled directly; 64 KiB
//! answers; each request within its timeout and the invocation deadline, one retry of a
//! refused connection or a 429/5xx). Every expiry goes through [`keyring_api::lifetime`].
//! Errors name the credentials file, the step and the URL without its query, never a token,
//! a body or a header value from the file.
//!
//! # Why not `google-cloud-auth`
//!
//! Google's own Rust crate (`google-cloud-auth` 1.19.0, the newest on crates.io, with
//! `default-features = false`: its defaults bring aws-lc-rs; ring then has to be installed
//! as the process's default rustls `CryptoProvider`) does all of the above, and was measured
//! against this code and not taken:
//!
//! * **Safety.** An STS `expires_in` of 2^63 panics (`overflow when adding duration to
//!   instant`, exit 101; here it is capped by [`keyring_api::lifetime`]). A `url` source
//!   answering 256 MiB is read whole (516 MiB resident) and sent on to STS (here: cut at
//!   64 KiB, `tests/hostile/gcp.rs`). Its errors quote bodies (`body=<…>` of a source's JSON,
//!   which may hold the token) and an executable's stderr; an executable that outlives its
//!   timeout is left running (no kill, no process group) and its output is unbounded (here:
//!   [`keyring_api::process`]).
//! * **Fit.** The public `AccessToken` carries no expiry (the `Instant` stays inside the
//!   crate), and every answer's lifetime here comes from the token's expiry
//!   ([`keyring_api::lifetime::for_expiry`]): it would be a guess. It builds a reqwest client
//!   per request with rustls-platform-verifier, which cannot be given [`keyring_net`]'s TLS
//!   configuration (it does read the system's roots and `SSL_CERT_FILE`, so trust is close);
//!   no body cap, its own retry policy; a deadline only by dropping its future. Its AWS
//!   source signs with its own SigV4 (hmac + sha2), where this crate uses `aws-sigv4`. It
//!   needs Rust 1.91 (the AWS crates already need 1.94.1). In its favour: `HTTPS_PROXY` and
//!   `NO_PROXY` are honoured (reqwest reads them: a `CONNECT` reached a test proxy, and
//!   `NO_PROXY` bypassed it), its HTTP is hyper 1 as ours (no hyper 0.14, no second TLS
//!   stack, no openssl), and it knows every source type.
//! * **Figures** (a stand-alone program that makes one file-sourced exchange, keyring-net
//!   alone vs. google-cloud-auth, each a clean static release build as
//!   `scripts/release.sh` makes one: fat LTO, one codegen unit, stripped, `crt-static`; on
//!   this shared 2-core machine, load 4 to 9): binary 3,429,168 → 4,749,648 bytes
//!   (+1.26 MiB, +38 %); 28 crates new to kubelet-keyring (google-cloud-auth, -gax, -rpc,
//!   -wkt, reqwest, rustls-platform-verifier, tower-http, jiff, serde_with and darling,
//!   futures, pin-project, rand, async-trait, ...), 114 s of release compile time for those
//!   (`cargo build --timings`), 215 s instead of 174 s of wall time for the build; a cold
//!   call against a local HTTPS fake STS (`hyperfine -N`, 60 runs, the system's roots plus
//!   the test CA in `SSL_CERT_FILE`) 11.2 ± 4.1 ms without, 9.7 ± 4.0 ms with: no
//!   difference within the noise (user + system 5.2 vs 5.5 ms). A cache hit builds no
//!   client either way.

pub mod aws;
pub mod source;

use std::path::Path;

use keyring_api::{Clock, Deadline, Secret};
use keyring_net::http::StatusCode;

use super::federation::{self, Body, Client, Endpoints};
use super::{AccessToken, SCOPE};
use crate::error::Error;
use crate::identity::external_account::{ExternalAccount, SubjectSource};
use crate::identity::key_file::Origin;
use crate::identity::Env;

/// Gets the access token `account` (read from `path`) describes.
pub(crate) async fn fetch(
    path: &Path,
    origin: Origin,
    account: &ExternalAccount,
    env: &Env,
    clock: &Clock,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    let file = format!(
        "{} {} (external_account)",
        origin.describe(),
        path.display()
    );
    let client = Client::new(deadline, Endpoints::CredentialsFile)?;
    let subject = match &account.source {
        SubjectSource::File {
            path: token,
            format,
        } => source::from_file(token, format, origin, path)?,
        SubjectSource::Url {
            url,
            headers,
            format,
        } => source::from_url(&client, url, headers, format, &file).await?,
        SubjectSource::Executable(exe) => {
            source::from_executable(exe, account, env, clock, deadline, &file)?
        }
        SubjectSource::Aws(a) => {
            aws::subject_token(
                &client,
                a,
                &account.audience,
                &env.aws,
                clock,
                origin,
                path,
                &file,
            )
            .await?
        }
    };
    let mut form = vec![
        ("grant_type", federation::GRANT_TYPE),
        ("audience", account.audience.as_str()),
        ("scope", SCOPE),
        ("requested_token_type", federation::ACCESS_TOKEN_TYPE),
        ("subject_token", subject.expose()),
        ("subject_token_type", account.subject_token_type.as_str()),
    ];
    let options = match (&account.user_project, &account.client) {
        (Some(project), None) => Some(serde_json::json!({ "userProject": project }).to_string()),
        _ => None,
    };
    if let Some(o) = &options {
        form.push(("options", o));
    }
    let body = Body::Form(Secret::new(keyring_net::form(&form)));
    drop(form);
    drop(subject);
    // As Google's STS client in its auth libraries: `id:secret` in base64, not form-encoded
    // first (RFC 6749 2.3.1 would; Google's STS takes it as they send it).
    let basic = account.client.as_ref().map(|(id, secret)| {
        use base64::Engine as _;
        let pair = Secret::new(format!("{id}:{}", secret.expose()));
        Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair.expose())
        ))
    });
    let started = clock.now();
    let (federated, expires_at) = federation::sts(
        &client,
        &account.token_url,
        body,
        basic.as_ref(),
        started,
        format!("{file}: STS token exchange"),
        sts_hint,
    )
    .await?;
    let sts_host = account.token_url.host().unwrap_or_default();
    let Some(imp) = &account.impersonation else {
        return Ok(AccessToken {
            token: federated,
            expires_at,
            source: format!("{file}, federated at {sts_host}"),
        });
    };
    let who = imp.email.as_deref().unwrap_or("the service account");
    let (token, expires_at) = federation::generate_access_token(
        &client,
        &imp.url,
        federated,
        imp.lifetime_secs,
        format!("{file}: impersonation of {who}"),
        &|status| iam_hint(status, who),
        clock,
    )
    .await?;
    Ok(AccessToken {
        token,
        expires_at,
        source: format!("{file}, federated at {sts_host}, impersonating {who}"),
    })
}

fn sts_hint(status: StatusCode, code: &str) -> String {
    match code {
        "invalid_target" | "invalid_request" => "the file's audience does not name an existing workload identity pool provider (or token_url is not Google STS)".into(),
        "invalid_grant" | "unauthorized_client" | "access_denied" => "Google STS does not accept the subject token: the pool's provider must trust its issuer (or AWS account) and allow its audience, and its attribute conditions must hold".into(),
        _ if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => "Google STS failed after 2 attempts; retry later".into(),
        _ => "check the external_account file (gcloud iam workload-identity-pools create-cred-config writes it)".into(),
    }
}

fn iam_hint(status: StatusCode, who: &str) -> String {
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => format!("grant the pool's principal roles/iam.workloadIdentityUser on {who}"),
        StatusCode::NOT_FOUND => format!("{who} does not exist; fix service_account_impersonation_url"),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => "the IAM credentials API failed after 2 attempts; retry later".into(),
        _ => "check service_account_impersonation_url and service_account_impersonation.token_lifetime_seconds (over 3600 s needs the organisation policy constraints/iam.allowServiceAccountCredentialLifetimeExtension)".into(),
    }
}
