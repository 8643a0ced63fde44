//! The call that turns the identity into a registry token: one `GetAuthorizationToken` (ECR
//! or ECR Public), with everything it needs built on the spot ([`crate::sdk`]) and thrown
//! away after. Only [`fetch`] is called, and only once the image is known to belong to ECR,
//! so no other path pays for the SDK.
//!
//! * Runtime: a current-thread tokio runtime per call ([`keyring_net::Blocking`]), dropped
//!   without waiting for its blocking pool (the thread of hyper's name lookups), within
//!   what is left of the invocation's budget ([`keyring_api::Deadline`]), inside the
//!   kubelet's 60 s exec limit; how that time is shared: [`crate::sdk`].
//! * Order: the SDK's files are checked, the HTTP client built, the region found (the host's,
//!   or the SDK's default one), the credentials resolved ([`crate::identity`]; a pod's role
//!   in the call's STS region, [`Call::sts_region`]), then the call.
//! * Endpoint: the SDK's, from the region, with FIPS / dual-stack when the call asks for
//!   them ([`Call`]: a mirror's entry, or the host's variant under
//!   `ecr.endpointVariantsFromHost`) or the SDK's settings do (`AWS_USE_FIPS_ENDPOINT`, the
//!   profile's `use_fips_endpoint`, ...); `AWS_ENDPOINT_URL_ECR`,
//!   `AWS_ENDPOINT_URL_ECR_PUBLIC`, `AWS_ENDPOINT_URL` (and the profile's `endpoint_url`)
//!   override it, and then the call's FIPS / dual-stack are not forced (the SDK refuses FIPS
//!   with a custom endpoint; the endpoint given is the one meant). Messages name the
//!   endpoint asked ([`endpoint`]).
//! * The registry ID is not sent: `registryIds` is deprecated, and the token is good for
//!   every registry the identity may read in the region.

use std::time::SystemTime;

use aws_config::Region;
use aws_types::sdk_config::SdkConfig;
use keyring_api::{Deadline, Secret};

use crate::error::Error;
use crate::host::{Api, Call};
use crate::identity::{self, Identity};
use crate::sdk::{self, MAX_ATTEMPTS};

/// `GetAuthorizationToken` through the SDK crate `$sdk_crate` (`aws_sdk_ecr` or
/// `aws_sdk_ecrpublic`, whose generated types are alike but distinct, so the call is written
/// once here for both): the client from the shared config, with the call's FIPS / dual-stack
/// when `$variants`; its output, or the [`Error::api`] of its failure.
macro_rules! get_authorization_token {
    ($sdk_crate:ident, $sdk:expr, $call:expr, $variants:expr, $endpoint:expr, $within:expr) => {{
        let mut conf = $sdk_crate::config::Builder::from($sdk);
        if $variants && $call.fips {
            conf = conf.use_fips(true);
        }
        if $variants && $call.dual_stack {
            conf = conf.use_dual_stack(true);
        }
        $sdk_crate::Client::from_conf(conf.build())
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| Error::api(e, $call.api, $endpoint, $within, MAX_ATTEMPTS))?
    }};
}

/// The URL `$sdk_crate`'s own endpoint rules give for a region, FIPS and dual-stack (written
/// once for both SDK crates, as [`get_authorization_token`]); `None` when they give none.
macro_rules! resolve_endpoint {
    ($sdk_crate:ident, $region:expr, $fips:expr, $dual_stack:expr) => {{
        use $sdk_crate::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let params = Params::builder()
            .region($region)
            .use_fips($fips)
            .use_dual_stack($dual_stack)
            .build()
            .ok()?;
        let endpoint = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .ok()?;
        Some(endpoint.url().to_string())
    }};
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Token {
    /// `base64(user:password)`.
    pub authorization: Secret<String>,
    /// When the token stops working, as the API states it: seconds after the Unix epoch
    /// (whole seconds: a fraction is dropped, which only ends the token's use earlier).
    /// The `answer` module makes it a time, through `keyring_api::lifetime`.
    pub expires: Option<i64>,
    /// The endpoint asked, for logs and messages.
    pub endpoint: String,
}

/// Gets a token by `deadline` at the latest; `go_proxy_variables` as in
/// [`keyring_aws::proxy_config`]; `now` is the query's clock's.
pub(crate) fn fetch(
    call: &Call,
    identity: &Identity,
    deadline: Deadline,
    go_proxy_variables: bool,
    now: SystemTime,
) -> Result<Token, Error> {
    keyring_api::quiet::run("keyring_ecr", || {
        let runtime = keyring_net::Blocking::new().map_err(Error::Runtime)?;
        // The invocation's budget is the call's: each step takes its share in fetch_async.
        let limit = deadline.remaining();
        let result = runtime.block_on(async {
            let fetching = fetch_async(call, identity, deadline, go_proxy_variables, now);
            match tokio::time::timeout(limit, fetching).await {
                Ok(result) => result,
                Err(_) => Err(Error::Deadline {
                    api: call.api.name(),
                    within: limit,
                }),
            }
        });
        // The runtime is dropped here without joining the resolver thread
        // (keyring_net::Blocking).
        result
    })
}

async fn fetch_async(
    call: &Call,
    identity: &Identity,
    deadline: Deadline,
    go_proxy_variables: bool,
    now: SystemTime,
) -> Result<Token, Error> {
    let started = std::time::Instant::now();
    keyring_aws::files::check_environment_files()?;
    let http = keyring_aws::http_client(go_proxy_variables)?;
    let default_region = || sdk::default_region(&http, sdk::credentials_budget(deadline));
    let region_name = match &call.region {
        Some(r) => r.clone(),
        None => default_region().await?,
    };
    // A pod's role is assumed in the call's STS region; ECR Public's (and another host's,
    // whose call is in the default region already) is the SDK's default region, as upstream,
    // or the call's when none is set.
    let identity_region = match (identity, &call.sts_region) {
        (Identity::WebIdentity { .. }, Some(r)) => r.clone(),
        (Identity::WebIdentity { .. }, None) if call.region.is_some() => {
            default_region().await.unwrap_or_else(|_| {
                tracing::debug!("no default region for STS; asking it in {region_name}");
                region_name.clone()
            })
        }
        _ => region_name.clone(),
    };
    let credentials = identity::credentials(
        identity,
        &http,
        &Region::new(identity_region),
        sdk::credentials_budget(deadline),
        now,
    )
    .await?;
    tracing::debug!(elapsed = ?started.elapsed(), "AWS credentials resolved");

    // The API call gets what is left.
    let within = deadline.remaining();
    let region = Region::new(region_name.clone());
    let sdk = sdk::loader(http, region, within)
        .credentials_provider(credentials)
        .load()
        .await;
    let endpoint_override = sdk::endpoint_override(&sdk, call.api.service_id());
    let endpoint = endpoint(call, &sdk, &region_name, endpoint_override.as_deref()).await;
    // FIPS / dual-stack of the call only without an explicit endpoint: the SDK refuses FIPS
    // with a custom endpoint, and a given endpoint is the one meant.
    let variants = endpoint_override.is_none();

    let token = match call.api {
        Api::Private => {
            let out =
                get_authorization_token!(aws_sdk_ecr, &sdk, call, variants, &endpoint, within);
            let data = out
                .authorization_data
                .unwrap_or_default()
                .into_iter()
                .next();
            data.map(|mut d| (d.authorization_token.take(), d.expires_at))
        }
        Api::Public => {
            let out = get_authorization_token!(
                aws_sdk_ecrpublic,
                &sdk,
                call,
                variants,
                &endpoint,
                within
            );
            out.authorization_data
                .map(|mut d| (d.authorization_token.take(), d.expires_at))
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "{} answered", call.api.name());
    let Some((Some(authorization), expires_at)) = token else {
        return Err(Error::NoToken {
            api: call.api,
            endpoint,
        });
    };
    Ok(Token {
        authorization: Secret::new(authorization),
        expires: expires_at.map(|t| t.secs()),
        endpoint,
    })
}

/// The endpoint asked, for messages: the override and where it came from, or the URL the
/// SDK's endpoint rules give with what chose it (`https://api.ecr.us-east-1.amazonaws.com
/// (ECR API, us-east-1, FIPS)`).
async fn endpoint(call: &Call, sdk: &SdkConfig, region: &str, over: Option<&str>) -> String {
    if let Some(url) = over {
        return format!(
            "{} ({})",
            sdk::shown_url(url),
            sdk::describe_override(call.api.endpoint_env())
        );
    }
    let fips = call.fips || sdk.use_fips().unwrap_or(false);
    let dual_stack = call.dual_stack || sdk.use_dual_stack().unwrap_or(false);
    let what = format!(
        "{} API, {}{}{}",
        call.api.name(),
        region,
        if fips { ", FIPS" } else { "" },
        if dual_stack { ", dual-stack" } else { "" }
    );
    match default_endpoint(call.api, region, fips, dual_stack).await {
        Some(url) => format!("{url} ({what})"),
        None => format!("the {what}"),
    }
}

/// The URL the SDK's endpoint rules give for these settings, for messages.
async fn default_endpoint(api: Api, region: &str, fips: bool, dual_stack: bool) -> Option<String> {
    match api {
        Api::Private => resolve_endpoint!(aws_sdk_ecr, region, fips, dual_stack),
        Api::Public => resolve_endpoint!(aws_sdk_ecrpublic, region, fips, dual_stack),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecr::config::endpoint::{Params, ResolveEndpoint};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// The endpoint each kind of host leads to, through the SDK's own endpoint rules.
    #[test]
    fn hosts_pick_the_right_api_endpoint() {
        let cases = [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "https://api.ecr.us-east-1.amazonaws.com",
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
                "https://api.ecr-fips.us-east-1.amazonaws.com",
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "https://api.ecr-fips.us-gov-west-1.amazonaws.com",
            ),
            (
                "123456789012.dkr-ecr.us-east-1.on.aws",
                "https://ecr.us-east-1.api.aws",
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-1.on.aws",
                "https://ecr-fips.us-east-1.api.aws",
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "https://api.ecr.cn-north-1.amazonaws.com.cn",
            ),
            (
                "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
                "https://ecr.cn-north-1.api.amazonwebservices.com.cn",
            ),
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                "https://api.ecr.eusc-de-east-1.amazonaws.eu",
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "https://api.ecr.us-iso-east-1.c2s.ic.gov",
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                "https://api.ecr.us-isob-east-1.sc2s.sgov.gov",
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                "https://api.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                "https://api.ecr.us-isof-south-1.csp.hci.ic.gov",
            ),
            (
                "123456789012.dkr.ecr.US-EAST-1.amazonaws.com",
                "https://api.ecr.us-east-1.amazonaws.com",
            ),
        ];
        for (host, want) in cases {
            let h = crate::host::PrivateHost::parse(host).unwrap();
            let params = Params::builder()
                .region(h.sdk_region())
                .use_fips(h.fips)
                .use_dual_stack(h.dual_stack())
                .build()
                .unwrap();
            let resolver = aws_sdk_ecr::config::endpoint::DefaultResolver::new();
            let ep = block_on(resolver.resolve_endpoint(&params))
                .unwrap_or_else(|e| panic!("{host}: {e}"));
            assert_eq!(ep.url(), want, "{host}");
        }
    }

    #[test]
    fn public_hosts_pick_the_public_endpoint() {
        use aws_sdk_ecrpublic::config::endpoint::{DefaultResolver, Params};
        for (dual, want) in [
            (false, "https://api.ecr-public.us-east-1.amazonaws.com"),
            (true, "https://ecr-public.us-east-1.api.aws"),
        ] {
            let params = Params::builder()
                .region(crate::host::PUBLIC_REGION)
                .use_fips(false)
                .use_dual_stack(dual)
                .build()
                .unwrap();
            let ep = block_on(
                aws_sdk_ecrpublic::config::endpoint::ResolveEndpoint::resolve_endpoint(
                    &DefaultResolver::new(),
                    &params,
                ),
            )
            .unwrap();
            assert_eq!(ep.url(), want);
        }
    }
}
