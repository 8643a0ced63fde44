//! The cap on every body the SDK reads: its HTTP client wrapped so that each response body
//! is read through http-body-util's `Limited` at keyring-net's cap, [`MAX_BODY`]; past it,
//! the read fails with [`TooLarge`].

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Largest body of any AWS answer: keyring-net's cap, the one every backend's HTTP reads
/// through.
pub const MAX_BODY: usize = keyring_net::Policy::DEFAULT.max_body;

/// Why an AWS answer was not read: its body passed the cap of every AWS answer.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the answer is larger than {}, the cap on every AWS answer", size(*.0))]
pub struct TooLarge(pub usize);

/// `1 MiB`, `64 KiB` or `100 bytes`.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// `client` with every response body capped at [`MAX_BODY`] ([`Capped`]).
pub fn capped(client: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(Capped(client))
}

/// The SDK's HTTP client with every response body read through a cap of [`MAX_BODY`]: past
/// it, reading the body fails with [`TooLarge`], which the SDK reports as an unreadable
/// answer (or, in the credentials chain, a failed link). The SDK reads every answer whole
/// into memory, and a hostile ECR, STS, container credentials or instance metadata endpoint
/// once drove one invocation to 2.3 GB; wrapping the client covers every client of the
/// call, the ones the SDK builds by itself (IMDS, the container endpoint) too.
#[derive(Debug)]
struct Capped(SharedHttpClient);

impl HttpClient for Capped {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CappedConnector(self.0.http_connector(settings, components)))
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_base_client_config(components, cfg)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// A connector of [`Capped`].
#[derive(Debug)]
struct CappedConnector(SharedHttpConnector);

impl HttpConnector for CappedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let response = self.0.call(request);
        HttpConnectorFuture::new(async move {
            Ok(response.await?.map(|body| {
                SdkBody::from_body_1_x(Limited::new(body, MAX_BODY).map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        Box::new(TooLarge(MAX_BODY)) as BoxError
                    } else {
                        e
                    }
                }))
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_named_in_the_unit_a_reader_expects() {
        assert_eq!(
            TooLarge(MAX_BODY).to_string(),
            "the answer is larger than 1 MiB, the cap on every AWS answer"
        );
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(100), "100 bytes");
    }
}
