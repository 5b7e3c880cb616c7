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

    mod proptests {
        use proptest::prelude::*;

        use super::*;

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
            const PORTS: &[&str] =
                &["", ":80", ":443", ":8080", ":65535", ":", ":65536", ":0080", ":000001", ":x", ":-1"];
            const SEGMENTS: &[&str] = &[
                "", "a", "p", "123", ".", "..", "%2e", "%2E", ".%2e", "%2e%2E", "a b", "a%20b", "ü", "\\", "~x",
                "a;b=c", "@", "{", "}", "|", "`", "%zz", "%", "x.y", "...", "a'b", "a\"b", "<", "^", "[x]", "\t",
                "a\nb",
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
            let plain_choice = |all: &'static [&'static str], plain: usize| {
                (0..all.len(), 0..plain).prop_map(move |(any, plain)| (all[any], all[plain]))
            };
            // A query: up to three `key=value` pairs, a value sometimes around the UTM length limit.
            let query = prop::option::weighted(
                0.67,
                prop::collection::vec(
                    (
                        prop::sample::select(KEYS),
                        prop_oneof![
                            9 => plain_choice(VALUES, 5).prop_map(|(any, plain)| (any.to_owned(), plain.to_owned())),
                            1 => (250usize..270).prop_map(|n| ("v".repeat(n), "v".repeat(n))),
                        ],
                    ),
                    0..4,
                ),
            );
            let url = (
                any::<bool>(),
                prop::sample::select(SCHEMES),
                prop::sample::select(&["https://", "http://"][..]),
                prop_oneof![13 => plain_choice(HOSTS, 4).prop_map(|(any, plain)| (any.to_owned(), plain.to_owned(), false)),
                    1 => (60usize..68).prop_map(|n| { let label = "a".repeat(n); let host = format!("{label}.{label}.{label}.{label}.{label}.example"); (host.clone(), host, true) })],
                plain_choice(PORTS, 5),
                prop::collection::vec((plain_choice(SEGMENTS, 4), any::<bool>()), 0..4),
                query,
                plain_choice(FRAGMENTS, 3),
            );
            let mut config = crate::strategies::config(2048);
            config.source_file = Some(file!());
            let mut runner = proptest::test_runner::TestRunner::new(config);
            let result = runner.run(&url, |(plain, scheme, plain_scheme, host, port, segments, query, fragment)| {
                // Half the URLs are built from the plain choices only, so both readings are exercised.
                let pick = |(any, plain_one): (&'static str, &'static str)| if plain { plain_one } else { any };
                let mut url = String::from(if plain { plain_scheme } else { scheme });
                url.push_str(if plain { &host.1 } else { &host.0 });
                url.push_str(pick(port));
                let mut in_place = plain && !host.2;
                for (segment, odd) in segments {
                    url.push('/');
                    // Even a plain URL has an odd segment now and then.
                    url.push_str(if plain && !odd { segment.1 } else { segment.0 });
                    in_place &= !odd;
                }
                if let Some(pairs) = query {
                    url.push('?');
                    for (i, (key, (any, plain_value))) in pairs.into_iter().enumerate() {
                        if i > 0 {
                            url.push('&');
                        }
                        url.push_str(key);
                        url.push('=');
                        url.push_str(if plain { &plain_value } else { &any });
                    }
                }
                url.push_str(pick(fragment));
                prop_assert_eq!(UrlFacts::parse(&url), UrlFacts::parse_with_url_crate(&url), "{:?}", url);
                // Built from the plain choices alone, a URL is read in place.
                prop_assert!(!in_place || plain_http_url(&url).is_some(), "not read in place: {:?}", url);
                Ok(())
            });
            if let Err(failure) = result {
                panic!("{failure}");
            }
        }

        proptest! {
            #![proptest_config(crate::strategies::config(1024))]

            /// Any text at all: the in-place reading answers as the `url` crate does.
            #[test]
            fn any_text_is_read_as_the_url_crate_reads_it(url in prop_oneof![
                any::<String>(),
                "https?://[a-z0-9.:@\\[\\]-]{0,20}(/[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,10}){0,3}(\\?[ -~]{0,30})?(#[ -~]{0,8})?",
            ]) {
                prop_assert_eq!(UrlFacts::parse(&url), UrlFacts::parse_with_url_crate(&url), "{:?}", url);
            }
        }
    }
}
