use super::*;

#[test]
fn members_keep_raw_values_and_unescape_keys() {
    let text = r#" { "a" : 1.50 , "b\u0063":{"x":[1,"}"]}, "n": 12345678901234567890 } "#;
    let ms = members(text).unwrap();
    let got: Vec<(&str, &str)> = ms.iter().map(|m| (m.key.as_ref(), m.value)).collect();
    assert_eq!(got, [("a", "1.50"), ("bc", r#"{"x":[1,"}"]}"#), ("n", "12345678901234567890")]);
    assert_eq!(members("{}").unwrap().len(), 0);
    assert!(members("[1]").is_none());
}

#[test]
fn get_path_and_elements() {
    let text = r#"{"params":{"_meta":{"progressToken":"t\"1"}},"list":[ {"a":1} , 2 ,"x,y"]}"#;
    assert_eq!(get_path(text, &["params", "_meta", "progressToken"]), Some(r#""t\"1""#));
    assert_eq!(as_str(r#""t\"1""#).unwrap(), "t\"1");
    assert_eq!(elements(get(text, "list").unwrap()).unwrap(), [r#"{"a":1}"#, "2", r#""x,y""#]);
    assert_eq!(elements("[]").unwrap().len(), 0);
    assert_eq!(get(text, "missing"), None);
}

type Case<'a> = (&'a str, &'a [(&'a str, Op<'a>)], &'a str);

#[test]
fn edits_touch_only_what_they_name() {
    let cases: &[Case] = &[
        (
            r#"{"name":"a__t","arguments":{"x":1.50}}"#,
            &[("name", Op::Set(r#""t""#))],
            r#"{"name":"t","arguments":{"x":1.50}}"#,
        ),
        (r#"{ "z":1 , "name" : "a" }"#, &[("name", Op::Replace(r#""b""#))], r#"{ "z":1 , "name" : "b" }"#),
        (r#"{"z":1}"#, &[("name", Op::Replace(r#""b""#))], r#"{"z":1}"#),
        (r#"{"z":1}"#, &[("resultType", Op::Default(r#""complete""#))], r#"{"z":1,"resultType":"complete"}"#),
        (r#"{"resultType":"x"}"#, &[("resultType", Op::Default(r#""complete""#))], r#"{"resultType":"x"}"#),
        (r#"{}"#, &[("a", Op::Set("1"))], r#"{"a":1}"#),
        (r#"{ }"#, &[("a", Op::Set("1")), ("b", Op::Set("2"))], r#"{ "a":1,"b":2}"#),
        (r#"{"a":1,"b":2,"c":3}"#, &[("a", Op::Remove)], r#"{"b":2,"c":3}"#),
        (r#"{"a":1,"b":2,"c":3}"#, &[("b", Op::Remove)], r#"{"a":1,"c":3}"#),
        (r#"{"a":1,"b":2,"c":3}"#, &[("c", Op::Remove)], r#"{"a":1,"b":2}"#),
        (r#"{"a":1}"#, &[("a", Op::Remove)], r#"{}"#),
        (r#"{"a":1,"b":2}"#, &[("a", Op::Remove), ("b", Op::Remove)], r#"{}"#),
        (r#"{"a":1,"b":2}"#, &[("a", Op::Remove), ("c", Op::Set("3"))], r#"{"b":2,"c":3}"#),
    ];
    for (input, edits, want) in cases {
        let got = edit_object(input, edits).unwrap();
        assert_eq!(&got, want, "{input} {edits:?}");
        serde_json::from_str::<serde_json::Value>(&got).unwrap();
    }
}

#[test]
fn nested_edits_create_or_replace() {
    let p = r#"{"name":"x","_meta":{"progressToken":"abc","vendor":1}}"#;
    assert_eq!(
        edit_path(p, &["_meta", "progressToken"], Op::Replace("7")).unwrap(),
        r#"{"name":"x","_meta":{"progressToken":7,"vendor":1}}"#
    );
    assert_eq!(
        edit_path(r#"{"name":"x"}"#, &["_meta", "k"], Op::Set("1")).unwrap(),
        r#"{"name":"x","_meta":{"k":1}}"#
    );
    assert_eq!(edit_path(r#"{"name":"x"}"#, &["_meta", "k"], Op::Replace("1")).unwrap(), r#"{"name":"x"}"#);
}
