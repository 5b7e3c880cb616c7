//! What an event takes from its page URL: the path and the UTM parameters.
//!
//! The rule is the WHATWG URL standard as the `url` crate implements it: a page URL is valid when
//! `url::Url::parse` accepts it, and the stored path and campaign fields are what that parse
//! yields. Parsing every URL that way was a tenth of the collector's work on a batch, so the URLs
//! storefronts send — `http(s)://host[:port]/path?query#fragment` in plain ASCII, with nothing the
//! standard would rewrite — are read directly from the text, borrowing it. Anything else (other
//! schemes, user info, IP hosts, IDNA labels, dot segments, characters the standard
//! percent-encodes) goes to the `url` crate. A test holds the two to the same answers on
//! generated URLs built from the standard's edge cases.

use std::borrow::Cow;

/// What the stored event takes from a valid page URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlFacts<'a> {
    /// The URL's path, normalized as the URL standard does.
    pub path: Cow<'a, str>,
    /// `utm_source`, `utm_medium`, `utm_campaign`, `utm_term` and `utm_content`, decoded, at
    /// most [`MAX_UTM_CHARS`] characters each; `None` when absent or empty. Of a repeated
    /// parameter, the last non-empty value counts.
    pub utm: [Option<Cow<'a, str>>; 5],
}

/// Longest UTM value kept, in characters.
pub const MAX_UTM_CHARS: usize = 256;

impl<'a> UrlFacts<'a> {
    /// Parses `url`; `None` when it is not an absolute URL.
    pub fn parse(url: &'a str) -> Option<Self> {
        match plain_http_url(url) {
            Some((path, query)) => Some(Self::from_parts(Cow::Borrowed(path), query)),
            None => Self::parse_with_url_crate(url),
        }
    }

    /// Parses `url` with the `url` crate only: the reference [`UrlFacts::parse`] agrees with.
    pub fn parse_with_url_crate(url: &str) -> Option<UrlFacts<'static>> {
        let parsed = url::Url::parse(url).ok()?;
        let facts = UrlFacts::from_parts(Cow::Borrowed(parsed.path()), parsed.query());
        Some(facts.into_owned())
    }

    fn from_parts(path: Cow<'a, str>, query: Option<&'a str>) -> Self {
        let path = if path.is_empty() { Cow::Borrowed("/") } else { path };
        let mut utm: [Option<Cow<'a, str>>; 5] = Default::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match key.as_ref() {
                "utm_source" => 0,
                "utm_medium" => 1,
                "utm_campaign" => 2,
                "utm_term" => 3,
                "utm_content" => 4,
                _ => continue,
            };
            if !value.is_empty() {
                utm[slot] = Some(truncate_chars(value, MAX_UTM_CHARS));
            }
        }
        Self { path, utm }
    }

    /// The same facts, owning their text.
    pub fn into_owned(self) -> UrlFacts<'static> {
        UrlFacts {
            path: Cow::Owned(self.path.into_owned()),
            utm: self.utm.map(|value| value.map(|v| Cow::Owned(v.into_owned()))),
        }
    }
}

fn truncate_chars(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    // A string of at most `max` bytes has at most `max` characters.
    if text.len() <= max {
        return text;
    }
    match text.char_indices().nth(max) {
        None => text,
        Some((end, _)) => match text {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
            Cow::Owned(mut s) => {
                s.truncate(end);
                Cow::Owned(s)
            }
        },
    }
}

/// Path and query of `url` when it is an `http(s)` URL the URL standard takes as it is written;
/// `None` when it is anything else, which does not mean it is invalid.
fn plain_http_url(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let bytes = rest.as_bytes();
    let authority_end = bytes.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(bytes.len());
    if !plain_authority(&rest[..authority_end]) {
        return None;
    }
    let rest = &rest[authority_end..];
    let (before_fragment, fragment) = match rest.find('#') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (path, query) = match before_fragment.find('?') {
        Some(at) => (&before_fragment[..at], Some(&before_fragment[at + 1..])),
        None => (before_fragment, None),
    };
    let plain = plain_path(path)
        && query.is_none_or(|q| q.bytes().all(plain_query_byte))
        // The fragment does not affect the facts; the standard percent-encodes some characters
        // in it but accepts any, so only characters it would strip or trim are sent on.
        && fragment.is_none_or(|f| f.bytes().all(|b| b.is_ascii_graphic()));
    plain.then_some((path, query))
}

/// `host[:port]` with a lower-case DNS name (not an IP, not IDNA) and a port in range.
fn plain_authority(authority: &str) -> bool {
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    });
    if !port_ok || host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with("xn--")
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    // A last label that starts with a digit may make the host an IPv4 address.
    let named = host.rsplit('.').next().and_then(|last| last.bytes().next()).is_some_and(|b| b.is_ascii_lowercase());
    labels_ok && named
}

/// An absolute path without dot segments and without characters the standard would encode.
fn plain_path(path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    path.starts_with('/')
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
        })
        && !path.split('/').any(|segment| segment == "." || segment == "..")
        // `%2e` is a dot to the standard's dot-segment rule.
        && !path.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] | 0x20) == b'e')
}

/// A query byte the standard keeps as it is (its special-query percent-encode set and the
/// characters it strips are excluded, as are a few it keeps, to stay on the safe side).
fn plain_query_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/?%[]".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storefront_url_is_read_in_place() {
        let url = "https://shop.example/p/123?utm_source=news+letter&utm_medium=email&x=%2F";
        assert!(plain_http_url(url).is_some());
        let facts = UrlFacts::parse(url).unwrap();
        assert!(matches!(facts.path, Cow::Borrowed("/p/123")));
        assert_eq!(facts.utm[0].as_deref(), Some("news letter"));
        assert!(matches!(facts.utm[1], Some(Cow::Borrowed("email"))));
        assert_eq!(facts, UrlFacts::parse_with_url_crate(url).unwrap());
    }

    #[test]
    fn urls_the_standard_rewrites_take_the_url_crate() {
        for url in [
            "https://Shop.example/",
            "https://shop.example/a/./b",
            "https://shop.example/a/%2E%2e/b",
            "https://shop.example/a b",
            "https://user@shop.example/",
            "https://10.0.0.1/",
            "https://xn--nxasmq6b.example/",
            "https:shop.example/x",
            "https://shop.example\\x",
            "ftp://shop.example/",
        ] {
            assert!(plain_http_url(url).is_none(), "{url}");
        }
        assert_eq!(UrlFacts::parse("https://shop.example/a/./b/../c").unwrap().path, "/a/c");
        assert!(UrlFacts::parse("not a url").is_none());
        assert!(UrlFacts::parse("https://shop.example:99999/").is_none());
    }

    #[test]
    fn long_campaign_values_are_cut_at_a_character_boundary() {
        let url = format!("https://shop.example/?utm_campaign={}", "é".repeat(300));
        let facts = UrlFacts::parse(&url).unwrap();
        assert_eq!(facts.utm[2].as_ref().unwrap().chars().count(), MAX_UTM_CHARS);
        assert_eq!(facts, UrlFacts::parse_with_url_crate(&url).unwrap());
    }

    /// Builds URLs from the URL standard's edge cases and checks the in-place reading against
    /// the `url` crate on every one.
    #[test]
    fn the_in_place_reading_agrees_with_the_url_crate() {
        const SCHEMES: &[&str] =
            &["https://", "http://", "HTTP://", "https:", "https:///", "http:\\\\", "ftp://", "https:/"];
        const HOSTS: &[&str] = &[
            "shop.example",
            "a",
            "a-b.c",
            "-a.b",
            "a-.b",
            "ab--cd.example",
            "xn--nxasmq6b.example",
            "xn--a.b",
            "Shop.Example",
            "1.2.3.4",
            "256.1.1.1",
            "0x10",
            "a.1",
            "a.b1",
            "1a.b",
            "a..b",
            "a.",
            ".a",
            "",
            "é.example",
            "a_b.c",
            "[::1]",
            "user:pw@host",
            "host@x",
            "a%41.b",
        ];
        const PORTS: &[&str] = &["", ":80", ":443", ":8080", ":65535", ":", ":65536", ":0080", ":000001", ":x", ":-1"];
        const SEGMENTS: &[&str] = &[
            "", "a", "p", "123", ".", "..", "%2e", "%2E", ".%2e", "%2e%2E", "a b", "a%20b", "ü", "\\", "~x", "a;b=c",
            "@", "{", "}", "|", "`", "%zz", "%", "x.y", "...", "a'b", "a\"b", "<", "^", "[x]", "\t", "a\nb",
        ];
        const KEYS: &[&str] = &[
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
            "x",
            "utm_source",
            "UTM_SOURCE",
            "utm%5Fsource",
            "",
        ];
        const VALUES: &[&str] = &[
            "",
            "news",
            "news+letter",
            "a%20b",
            "%zz",
            "é",
            "a'b",
            "a\"b",
            "a<b",
            "%C3%A9",
            "+++",
            "a=b",
            "a?b",
            "a/b",
            "a`b",
            "a{b}",
            "a|b",
            "a\\b",
            "a b",
            "%",
            "%2",
            "[x]",
        ];
        const FRAGMENTS: &[&str] = &["", "#", "#frag", "#a b", "#ü", "#a#b", "#?utm_source=x", "#\t"];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut in_place = 0;
        for round in 0..60_000 {
            let mut url = String::new();
            // Most URLs are built from the plain choices, so both readings are exercised.
            let plain = round % 2 == 0;
            url.push_str(if plain { ["https://", "http://"][next(2)] } else { SCHEMES[next(SCHEMES.len())] });
            if round % 14 == 0 {
                // Around the DNS limits of 63 bytes a label and 253 a name.
                let label = "a".repeat(60 + next(8));
                url.push_str(&format!("{label}.{label}.{label}.{label}.{label}.example"));
            } else {
                url.push_str(if plain { HOSTS[next(4)] } else { HOSTS[next(HOSTS.len())] });
            }
            url.push_str(if plain { PORTS[next(5)] } else { PORTS[next(PORTS.len())] });
            for _ in 0..next(4) {
                url.push('/');
                url.push_str(if plain && next(3) > 0 { SEGMENTS[next(4)] } else { SEGMENTS[next(SEGMENTS.len())] });
            }
            if next(3) > 0 {
                url.push('?');
                for i in 0..next(4) {
                    if i > 0 {
                        url.push('&');
                    }
                    url.push_str(KEYS[next(KEYS.len())]);
                    url.push('=');
                    let value = match next(10) {
                        0 => "v".repeat(250 + next(20)),
                        _ if plain => VALUES[next(5)].to_owned(),
                        _ => VALUES[next(VALUES.len())].to_owned(),
                    };
                    url.push_str(&value);
                }
            }
            url.push_str(if plain { FRAGMENTS[next(3)] } else { FRAGMENTS[next(FRAGMENTS.len())] });
            if plain_http_url(&url).is_some() {
                in_place += 1;
            }
            assert_eq!(UrlFacts::parse(&url), UrlFacts::parse_with_url_crate(&url), "{url:?}");
        }
        // The comparison covered both readings in earnest.
        assert!(in_place > 10_000, "only {in_place} URLs were read in place");
    }
}
