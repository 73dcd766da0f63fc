//! Unit tests of `param_headers`: annotations, encoding and validation against the body.

use super::*;

const TOOL: &str = r#"{"name":"t","inputSchema":{"type":"object","properties":{
    "region":{"type":"string","x-mcp-header":"Region"},
    "priority":{"type":"integer","x-mcp-header":"Priority"},
    "verbose":{"type":"boolean","x-mcp-header":"Verbose"},
    "query":{"type":"string"}}}}"#;

fn spec() -> ToolHeaders {
    from_tool(TOOL).expect("annotated tool")
}

fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn reads_annotations_and_skips_tools_without_or_with_invalid_ones() {
    let s = spec();
    let got: Vec<_> = s.iter().map(|p| (p.property.as_str(), p.name.as_str(), p.integer)).collect();
    assert_eq!(
        got,
        [
            ("region", "mcp-param-region", false),
            ("priority", "mcp-param-priority", true),
            ("verbose", "mcp-param-verbose", false)
        ]
    );
    let none = [
        r#"{"name":"a","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}}"#,
        r#"{"name":"a","inputSchema":{"type":"object","properties":{"q":{"type":"string","x-mcp-header":""}}}}"#,
        r#"{"name":"a","inputSchema":{"type":"object","properties":{"q":{"type":"number","x-mcp-header":"Q"}}}}"#,
        r#"{"name":"a","inputSchema":{"type":"object","properties":{"q":{"type":"object","x-mcp-header":"Q"}}}}"#,
        r#"{"name":"a","inputSchema":{"type":"object","properties":{"q":{"type":"string","x-mcp-header":"My Q"}}}}"#,
        r#"{"name":"a","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"Q"},"b":{"type":"string","x-mcp-header":"q"}}}}"#,
    ];
    for tool in none {
        assert_eq!(from_tool(tool), None, "{tool}");
    }
}

#[test]
fn encodes_unsafe_values_in_base64_and_decodes_them_back() {
    let cases = [
        ("us-west1", "us-west1"),
        ("us west 1", "us west 1"),
        ("", ""),
        (" padded ", "=?base64?IHBhZGRlZCA=?="),
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        ("a\r\nb", "=?base64?YQ0KYg==?="),
        ("\tx", "=?base64?CXg=?="),
        ("=?base64?SGVsbG8=?=", "=?base64?PT9iYXNlNjQ/U0dWc2JHOD0/PQ==?="),
    ];
    for (value, header) in cases {
        assert_eq!(encode(value), header, "{value:?}");
        assert_eq!(decode(header).as_deref(), Some(value), "{header}");
    }
    // Bad padding or alphabet inside the sentinel is malformed; without the full sentinel the
    // value is literal.
    assert_eq!(decode("=?base64?SGVsbG8?="), None);
    assert_eq!(decode("=?base64?SGVs!!!bG8=?="), None);
    assert_eq!(decode("=?base64?SGVsbG8=").as_deref(), Some("=?base64?SGVsbG8="));
    assert_eq!(decode("SGVsbG8=").as_deref(), Some("SGVsbG8="));
}

#[test]
fn headers_mirror_present_primitive_arguments_only() {
    let args = r#"{"region":"Hello, 世界","priority":42,"verbose":null,"query":"x"}"#;
    let got: Vec<_> = headers_for(&spec(), Some(args))
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got,
        [
            ("mcp-param-region".to_owned(), "=?base64?SGVsbG8sIOS4lueVjA==?=".to_owned()),
            ("mcp-param-priority".to_owned(), "42".to_owned())
        ]
    );
    let got = headers_for(&spec(), Some(r#"{"verbose":false}"#));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "false");
    assert!(headers_for(&spec(), None).is_empty());
}

#[test]
fn validation_accepts_matching_headers_and_rejects_the_rest() {
    let args = r#"{"region":"Hello","priority":42,"query":"q"}"#;
    let ok: [&[(&str, &str)]; 4] = [
        &[("Mcp-Param-Region", "Hello"), ("Mcp-Param-Priority", "42")],
        &[("mcp-param-region", "=?base64?SGVsbG8=?="), ("mcp-param-priority", "42.0")],
        &[("Mcp-Param-Region", "Hello"), ("Mcp-Param-Priority", "42"), ("Mcp-Param-Query", "anything")],
        &[("Mcp-Param-Region", " Hello "), ("Mcp-Param-Priority", "42")],
    ];
    for h in ok {
        assert_eq!(validate(&spec(), Some(args), &hm(h)), Ok(()), "{h:?}");
    }
    let bad: [(&[(&str, &str)], &str); 7] = [
        (&[("Mcp-Param-Priority", "42")], "Mcp-Param-Region header is missing"),
        (&[("Mcp-Param-Region", "World"), ("Mcp-Param-Priority", "42")], "does not match the `region`"),
        (&[("Mcp-Param-Region", "=?base64?SGVsbG8?="), ("Mcp-Param-Priority", "42")], "malformed base64"),
        (&[("Mcp-Param-Region", "=?base64?SGVs!!!bG8=?="), ("Mcp-Param-Priority", "42")], "malformed base64"),
        (&[("Mcp-Param-Region", "Hello"), ("Mcp-Param-Priority", "43")], "does not match the `priority`"),
        (
            &[("Mcp-Param-Region", "Hello"), ("Mcp-Param-Region", "Hello"), ("Mcp-Param-Priority", "42")],
            "more than once",
        ),
        (
            &[("Mcp-Param-Region", "Hello"), ("Mcp-Param-Priority", "42"), ("Mcp-Param-Verbose", "true")],
            "`verbose` argument is absent",
        ),
    ];
    for (h, want) in bad {
        let err = validate(&spec(), Some(args), &hm(h)).expect_err(want);
        assert!(err.contains(want), "{h:?}: {err}");
    }
    // A header value that is not visible ASCII is rejected, not misread.
    let mut h = hm(&[("Mcp-Param-Priority", "42")]);
    h.insert("mcp-param-region", HeaderValue::from_bytes("Héllo".as_bytes()).unwrap());
    assert!(validate(&spec(), Some(args), &h).unwrap_err().contains("invalid characters"));
}
