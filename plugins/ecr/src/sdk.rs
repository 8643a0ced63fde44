//! The AWS SDK as every call of this backend sets it up: built on the spot, thrown away with
//! the call's runtime, and only once the image is known to be ECR's.
//!
//! * HTTP: the one AWS SDK client of kubelet-keyring, [`keyring_aws::http_client`], built
//!   from keyring-net's policy: rustls on the ring provider; the system's root certificates,
//!   those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (read bounded by keyring-net, not by
//!   the SDK) or, as in the Go SDK, only those of `AWS_CA_BUNDLE`; `HTTPS_PROXY` /
//!   `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` from the environment (smithy's matcher, the same
//!   variables and rules), without `ALL_PROXY` as upstream's Go client reads them when
//!   answering as `ecr-credential-provider` ([`keyring_aws::proxy_config`]);
//!   [`CONNECT_TIMEOUT`] and [`MAX_ATTEMPTS`] from [`keyring_net::Policy::DEFAULT`]. What
//!   differs is said in keyring-net's crate docs: the SDK's own retry strategy, upstream's
//!   attempt timeout ([`ATTEMPT_TIMEOUT`]) and `AWS_CA_BUNDLE`. Every SDK client of a call
//!   (ECR, ECR Public, STS, the credentials chain's IMDS and container endpoints) uses this
//!   one client, and every body it reads stops at keyring-net's cap
//!   ([`keyring_aws::MAX_BODY`]).
//! * Bounds: one budget, the invocation's ([`keyring_api::Deadline`], 50 s less any wait
//!   for the cache lock), for the whole call. Finding the credentials (a `credential_process`,
//!   SSO, STS, the container endpoint) and the default region may take all of it but
//!   [`API_RESERVE`] ([`credentials_budget`]); the API call then gets what is left. Each
//!   call ([`loader`]): the SDK's standard retry (3 attempts, exponential backoff with
//!   jitter, throttling-aware), [`ATTEMPT_TIMEOUT`] per attempt as upstream, all attempts
//!   within the budget given. Upstream has no overall bound but the kubelet's 60 s kill; a
//!   call that would need more than 50 s fails here with a line instead. The instance
//!   metadata client ([`imds_client`]) gets short timeouts and two attempts, since a node
//!   without IMDS (or a pod behind a hop limit of 1) must fail in seconds, not the SDK
//!   default of half a minute.
//! * Files ([`keyring_aws::files`], shared with the identity backend): the profile,
//!   credentials, web identity token (named by the environment or a profile), CA bundle and
//!   SSO token cache files the SDK reads whole must be regular files of at most 4 MiB; the
//!   call checks those the environment names first, the node's credentials those its
//!   profiles name. The certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR`, which the SDK's
//!   loader (`rustls-native-certs`) would read whole and blocking, are read bounded by
//!   keyring-net and handed over ([`keyring_net::tls::env_roots_pem`]).
//! * Endpoints: what the SDK's configuration overrides ([`endpoint_override`]) and how a
//!   message names it ([`describe_override`], [`shown_url`]).

use std::time::Duration;

use aws_config::imds;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ecr::config::SharedHttpClient;
use aws_types::sdk_config::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use keyring_api::Deadline;

use crate::error::{sanitize, Error};

/// What finding the credentials (or the default region) leaves for the API call, all its
/// attempts: they may take the invocation's time but this ([`credentials_budget`]).
pub const API_RESERVE: Duration = Duration::from_secs(10);
/// Attempts of each AWS call (the first one included).
pub const MAX_ATTEMPTS: u32 = keyring_net::Policy::DEFAULT.backoff.attempts;
/// One attempt of an AWS call, connect to last byte: upstream's 30 s per HTTP request, cut
/// to the time the call has left ([`loader`]).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP + TLS connect.
pub const CONNECT_TIMEOUT: Duration = keyring_net::Policy::DEFAULT.connect;
/// IMDS connect and read timeouts; IMDS answers in milliseconds when it is there at all.
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// IMDS attempts.
pub const IMDS_ATTEMPTS: u32 = 2;

/// The SDK settings every client of a call shares: the HTTP client, the region, the
/// bounded retries, and timeouts that end all attempts within `within` ([`ATTEMPT_TIMEOUT`]
/// each, at most). The profile is [`profile_name`]'s.
pub(crate) fn loader(
    http: SharedHttpClient,
    region: Region,
    within: Duration,
) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(500))
                .with_max_backoff(Duration::from_secs(4)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(within))
                .operation_timeout(within)
                .build(),
        );
    match profile_name() {
        Some(name) => loader.profile_name(name),
        None => loader,
    }
}

/// The time for the credentials or the default region of a call that must end by
/// `deadline`: what is left but [`API_RESERVE`], and at least half of what is left.
pub(crate) fn credentials_budget(deadline: Deadline) -> Duration {
    let left = deadline.remaining();
    left.saturating_sub(API_RESERVE).max(left / 2)
}

/// The profile to read when the SDK would not find it by itself: `AWS_DEFAULT_PROFILE`,
/// which the Go SDK reads after `AWS_PROFILE` and the Rust SDK does not read at all. `None`
/// when `AWS_PROFILE` is set (the SDK reads it) or neither is.
pub(crate) fn profile_name() -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match env("AWS_PROFILE") {
        Some(_) => None,
        None => env("AWS_DEFAULT_PROFILE"),
    }
}

/// The instance metadata client of the credentials and region chains, with short bounds: a
/// node off EC2 must not spend the invocation's budget waiting for 169.254.169.254.
pub(crate) fn imds_client(provider_config: &ProviderConfig) -> imds::Client {
    imds::Client::builder()
        .configure(provider_config)
        .max_attempts(IMDS_ATTEMPTS)
        .connect_timeout(IMDS_TIMEOUT)
        .read_timeout(IMDS_TIMEOUT)
        .operation_timeout(IMDS_TIMEOUT * 4)
        .build()
}

/// The SDK's default region, for hosts that do not name one (`ecr.otherHosts:
/// defaultRegion`) and for STS when a pod's role is assumed for ECR Public: environment,
/// profile, then the instance metadata service (a step upstream's Go SDK does not take, so
/// that it fails where this finds one), with the same short IMDS bounds as the credentials
/// chain, within `within`. None of them is an error that says where a region can be set.
pub(crate) async fn default_region(
    http: &SharedHttpClient,
    within: Duration,
) -> Result<String, Error> {
    let provider_config = ProviderConfig::default().with_http_client(http.clone());
    let imds = imds_client(&provider_config);
    let mut profile =
        aws_config::profile::ProfileFileRegionProvider::builder().configure(&provider_config);
    if let Some(name) = profile_name() {
        profile = profile.profile_name(name);
    }
    // The default chain's parts, built here because its builder takes no IMDS client.
    let chain = aws_config::meta::region::RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(profile.build())
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .imds_client(imds)
            .build(),
    );
    match tokio::time::timeout(within, chain.region()).await {
        Ok(Some(region)) => Ok(region.to_string()),
        _ => Err(Error::NoRegion),
    }
}

/// The endpoint URL configured for the service with this SDK ID (service variable, profile,
/// or the global `AWS_ENDPOINT_URL`), as the generated client will resolve it.
pub(crate) fn endpoint_override(sdk: &SdkConfig, service_id: &str) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id(service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

/// Where an endpoint override came from, for messages; `specific` is the service's own
/// variable (`AWS_ENDPOINT_URL_ECR`).
pub(crate) fn describe_override(specific: &str) -> String {
    if std::env::var_os(specific).is_some() {
        format!("from {specific}")
    } else if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        "from AWS_ENDPOINT_URL".into()
    } else {
        "from the AWS profile's endpoint_url".into()
    }
}

/// A URL for messages: without user-info, query or fragment, one bounded line.
pub(crate) fn shown_url(url: &str) -> String {
    sanitize(&keyring_net::shown_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keyring-net's shown_url (tested there), made one line.
    #[test]
    fn endpoint_urls_in_messages_lose_their_user_info_and_stay_one_line() {
        assert_eq!(
            shown_url("http://u:p@127.0.0.1:5000/x"),
            "http://127.0.0.1:5000/x"
        );
        assert_eq!(shown_url("https://h.example/a\nb"), "https://h.example/a b");
    }
}
