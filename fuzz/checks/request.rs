//! Checks for the `request` fuzz target, shared with `plugins/api/tests/fuzz_seeds.rs`.
//!
//! Input: the bytes the kubelet would write on stdin. Properties:
//! * `decode_request` never panics; an error is one line;
//! * a decoded request has a non-empty image, and service-account fields only in v1;
//! * a request image that normalizes gives a name that is a fixed point of normalization,
//!   whose `registry()/path()` split rebuilds it;
//! * a response echoing the image and token serializes to JSON that reads back the same;
//! * the input taken as a Go duration: whatever parses formats back to the same value.

use std::collections::BTreeMap;
use std::time::Duration;

use keyring_api::wire::{decode_request, ApiVersion, AuthConfig, Response};
use keyring_api::{duration, CacheKeyType, ImageName, Secret};

/// Runs every property on one input; panics (an assertion) on a violation.
pub fn check(data: &[u8]) {
    match decode_request(data) {
        Ok(request) => {
            assert!(!request.image.is_empty(), "decoded an empty image");
            if request.api_version != ApiVersion::V1 {
                assert!(request.service_account_token.is_none());
                assert!(request.service_account_annotations.is_empty());
            }
            if let Some(token) = &request.service_account_token {
                assert!(!token.expose().is_empty());
            }
            check_image(&request.image);
            check_response(&request.image, request.service_account_token.as_ref());
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "multi-line error: {text:?}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_image(text);
        check_duration(text);
    }
}

/// Normalization is idempotent and the parts rebuild the name.
pub fn check_image(reference: &str) {
    let Ok(name) = ImageName::parse(reference) else {
        return;
    };
    let again = ImageName::parse(name.as_str());
    assert_eq!(
        again.as_ref(),
        Ok(&name),
        "normalized name {name} is not a fixed point of ImageName::parse"
    );
    assert_eq!(
        format!("{}/{}", name.registry(), name.path()),
        name.as_str()
    );
    assert!(name.registry().contains(name.host()));
    assert!(name.as_str().len() <= 255);
}

fn check_response(image: &str, token: Option<&Secret<String>>) {
    let password = token.map(|t| t.expose().clone()).unwrap_or_default();
    let mut auth = BTreeMap::new();
    auth.insert(
        image.to_string(),
        AuthConfig {
            username: image.to_string(),
            password: Secret::new(password.clone()),
        },
    );
    let response = Response {
        api_version: ApiVersion::V1,
        cache_key_type: CacheKeyType::Image,
        cache_duration: Some(Duration::from_secs(300)),
        auth,
    };
    let json = response.to_json();
    assert_eq!(json.last(), Some(&b'\n'));
    assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), 1);
    let value: serde_json::Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => panic!("response is not JSON: {e}"),
    };
    let entry = &value["auth"][image];
    assert_eq!(entry["username"].as_str(), Some(image));
    assert_eq!(entry["password"].as_str(), Some(password.as_str()));
    assert_eq!(entry.as_object().map(|o| o.len()), Some(2));
    assert_eq!(value["cacheDuration"].as_str(), Some("5m0s"));
}

/// Whatever `duration::parse` accepts, `format_nanos` prints back to the same value.
pub fn check_duration(text: &str) {
    if let Ok(nanos) = duration::parse(text) {
        let printed = duration::format_nanos(nanos);
        assert_eq!(
            duration::parse(&printed),
            Ok(nanos),
            "{text:?} parsed to {nanos} printed as {printed:?}"
        );
    }
}
