//! The acr backend (being written).

/// This backend's section of the plugin config file (`acr:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {}
