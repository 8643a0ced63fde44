//! The proxy settings of the client, from the environment: curl's rules (smithy's matcher),
//! or, for a backend answering as an upstream Go plugin, Go's `net/http` rules.

use aws_smithy_http_client::proxy::ProxyConfig;

/// The proxy settings from the environment (`env`): smithy's matcher, which reads
/// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case) as curl does; or,
/// with `go_proxy_variables`, as Go's `net/http` does for upstream's plugin: `ALL_PROXY` is
/// not a proxy there, and in a CGI environment (`REQUEST_METHOD` set) only `HTTP_PROXY` is
/// dropped, where smithy's matcher drops every proxy. So with either set, only
/// `HTTPS_PROXY` for `https://` and `HTTP_PROXY` for `http://` (and `NO_PROXY`), whichever
/// apply. A value that is no proxy URL means no proxy, as in smithy's matcher.
pub fn proxy_config(go_proxy_variables: bool, env: &dyn Fn(&str) -> Option<String>) -> ProxyConfig {
    let first = |names: [&str; 2]| {
        names
            .into_iter()
            .find_map(|n| env(n).filter(|v| !v.is_empty()))
    };
    let cgi = env("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
    if !go_proxy_variables || (first(["ALL_PROXY", "all_proxy"]).is_none() && !cgi) {
        return ProxyConfig::from_env();
    }
    // A proxy without a scheme is an http:// one, for Go and smithy alike.
    let url = |v: String| match v.contains("://") {
        true => v,
        false => format!("http://{v}"),
    };
    let http = first(["HTTP_PROXY", "http_proxy"]).filter(|_| !cgi);
    let config = match (http, first(["HTTPS_PROXY", "https_proxy"])) {
        // Both set (so no CGI): the matcher never falls back to ALL_PROXY.
        (Some(_), Some(_)) => return ProxyConfig::from_env(),
        (Some(http), None) => ProxyConfig::http(url(http)),
        (None, Some(https)) => ProxyConfig::https(url(https)),
        (None, None) => return ProxyConfig::disabled(),
    };
    match (config, first(["NO_PROXY", "no_proxy"])) {
        (Ok(c), Some(no)) => c.no_proxy(no),
        (Ok(c), None) => c,
        (Err(_), _) => ProxyConfig::disabled(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn all_proxy_is_no_proxy_where_upstreams_go_client_reads_the_variables() {
        // Without ALL_PROXY, or under the own name: smithy's matcher (curl's rules).
        assert!(proxy_config(false, &env(&[("ALL_PROXY", "http://p:1")])).is_from_env());
        assert!(proxy_config(true, &env(&[("HTTPS_PROXY", "http://p:1")])).is_from_env());
        // Go's rules: ALL_PROXY alone is no proxy; beside one of the others, only that one.
        assert!(proxy_config(true, &env(&[("ALL_PROXY", "http://p:1")])).is_disabled());
        let only = |pairs| format!("{:?}", proxy_config(true, &env(pairs)));
        let https = only(&[
            ("all_proxy", "socks5://p:1"),
            ("https_proxy", "p:3128"),
            ("NO_PROXY", "internal.example"),
        ]);
        assert!(
            https.contains("Https")
                && https.contains("http://p:3128")
                && https.contains("internal.example"),
            "{https}"
        );
        let http = only(&[("ALL_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:2")]);
        assert!(http.contains("Http {") && http.contains("p:2"), "{http}");
        assert!(proxy_config(
            true,
            &env(&[
                ("ALL_PROXY", "http://p:1"),
                ("HTTP_PROXY", "http://p:2"),
                ("HTTPS_PROXY", "http://p:3")
            ])
        )
        .is_from_env());
        assert!(proxy_config(
            true,
            &env(&[("ALL_PROXY", "http://p:1"), ("HTTPS_PROXY", "http://[bad")])
        )
        .is_disabled());
        // CGI: Go still proxies https://, where smithy's matcher proxies nothing.
        let cgi = only(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://p:2"),
            ("HTTPS_PROXY", "http://p:3"),
        ]);
        assert!(cgi.contains("Https") && cgi.contains("p:3"), "{cgi}");
    }
}
