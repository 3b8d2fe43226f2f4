//! What a caller may name: `http`/`https` URLs and `host:port` targets, validated into types the
//! other modules trust. A bad target is an `invalid_argument` failure and nothing is sent.

use serde::{Deserialize, Serialize};

use crate::agent::failure::Failure;

/// The longest URL accepted.
pub const MAX_URL: usize = 2048;

/// Which address family to use for a name with both.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// IPv4 when the name has an IPv4 address (and the box an IPv4 lease), else IPv6 (see
    /// [`super::stacks`]).
    #[default]
    Auto,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl Family {
    /// The address to use among `addrs`, if any fits, not knowing the box's families
    /// ([`super::stacks::Stacks::pick`] when known): `auto` is IPv4 first.
    pub fn pick(self, addrs: &[std::net::IpAddr]) -> Option<std::net::IpAddr> {
        match self {
            Family::Auto => crate::agent::nettools::pick_address(addrs),
            Family::Ipv4 => addrs.iter().find(|a| a.is_ipv4()).copied(),
            Family::Ipv6 => addrs.iter().find(|a| a.is_ipv6()).copied(),
        }
    }
}

/// The family of an address, as the results report it (`ipv4` / `ipv6`).
pub fn family_of(ip: std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() { "ipv4" } else { "ipv6" }
}

/// Parse and check an `http://` or `https://` URL: no other scheme (`file:`, `ftp:`, …), no
/// Unix path, no user info, a valid host, a port 1-65535.
pub fn web_url(input: &str) -> Result<url::Url, Failure> {
    if input.len() > MAX_URL {
        return Err(Failure::invalid(format!(
            "url is longer than {MAX_URL} characters"
        )));
    }
    if input.starts_with('/') || input.starts_with('.') || input.starts_with('~') {
        return Err(Failure::invalid(format!(
            "{input:?} is a path, not a URL: give an http:// or https:// URL"
        )));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::invalid(
            "url must not contain spaces or control characters",
        ));
    }
    if let Some((scheme, _)) = input.split_once(':') {
        let s = scheme.to_ascii_lowercase();
        if s != "http"
            && s != "https"
            && !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(Failure::invalid(format!(
                "unsupported URL scheme {s}: only http:// and https:// are fetched"
            )));
        }
    }
    let url = url::Url::parse(input).map_err(|e| match e {
        url::ParseError::InvalidPort => {
            Failure::invalid(format!("bad port in {input:?}: a port must be 1-65535"))
        }
        e => Failure::invalid(format!("{input:?} is not a valid URL: {e}")),
    })?;
    check_web_url(&url)?;
    Ok(url)
}

/// The checks of [`web_url`] on an already-parsed URL (a redirect's target, for one).
pub fn check_web_url(url: &url::Url) -> Result<(), Failure> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::invalid(format!(
            "unsupported URL scheme {}: only http:// and https:// are fetched",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Failure::invalid("URLs with user info are not supported"));
    }
    match url.host() {
        None => return Err(Failure::invalid("the URL has no host")),
        Some(url::Host::Domain(d)) => {
            crate::validate::host(d).map_err(Failure::invalid)?;
        }
        Some(_) => {}
    }
    if url.port() == Some(0) {
        return Err(Failure::invalid(
            "port 0 is not a port: a port must be 1-65535",
        ));
    }
    Ok(())
}

/// The host of a checked URL, as a name or an IP literal without brackets.
pub fn url_host(url: &url::Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    }
}

/// A port given as a number in JSON: 1-65535, or a clear error.
pub fn port(n: u64) -> Result<u16, Failure> {
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Failure::invalid(format!(
            "port {n} is out of range: a port must be 1-65535"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls_accepted_and_refused() {
        let u = web_url("https://ap.test:8443/a?b=1").unwrap();
        assert_eq!(
            (url_host(&u).as_str(), u.port_or_known_default()),
            ("ap.test", Some(8443))
        );
        let u = web_url("http://[fd00:77::1]/").unwrap();
        assert_eq!(url_host(&u), "fd00:77::1");
        assert_eq!(
            web_url("HTTP://AP.TEST").unwrap().as_str(),
            "http://ap.test/"
        );
        for (bad, why) in [
            ("file:///etc/passwd", "unsupported URL scheme file"),
            ("ftp://x/", "unsupported URL scheme ftp"),
            ("/run/wifi-isolate/mcp.sock", "is a path"),
            ("./x", "is a path"),
            ("http://x:0/", "a port must be 1-65535"),
            ("http://x:70000/", "a port must be 1-65535"),
            ("http://u:p@x/", "user info"),
            ("http://a b/", "spaces"),
            ("http://x\r\nHost: y/", "control"),
            ("http://-bad-/", ""),
            ("gopher://x", "unsupported URL scheme gopher"),
        ] {
            let e = web_url(bad).expect_err(bad);
            assert!(e.text.contains(why), "{bad}: {}", e.text);
            assert_eq!(e.code, crate::agent::failure::Code::InvalidArgument);
        }
        assert!(web_url(&format!("http://x/{}", "a".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn ports_and_families() {
        assert_eq!(port(443).unwrap(), 443);
        assert!(port(0).unwrap_err().text.contains("1-65535"));
        assert!(port(70000).unwrap_err().text.contains("1-65535"));
        let v4: std::net::IpAddr = "10.0.2.1".parse().unwrap();
        let v6: std::net::IpAddr = "fd00:77::1".parse().unwrap();
        assert_eq!(Family::Auto.pick(&[v6, v4]), Some(v4));
        assert_eq!(Family::Ipv6.pick(&[v4, v6]), Some(v6));
        assert_eq!(Family::Ipv4.pick(&[v6]), None);
        assert_eq!(family_of(v6), "ipv6");
    }
}
