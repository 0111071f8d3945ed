use super::*;
use crate::admit::identity::testing::FILE;

fn error(text: &str) -> AccessFileError {
    AccessList::parse(text, "access.toml").unwrap_err()
}

fn client(lines: &str) -> String {
    format!("[[client]]\nname = \"a\"\naccess_key_id = \"AKIDA\"\nsecret_access_key = \"a-secret-0123456789\"\n{lines}")
}

#[test]
fn reads_the_contract_example() {
    let list = AccessList::parse(FILE, "access.toml").unwrap();
    assert_eq!(list.len(), 2);
    let names: Vec<&str> = list.clients().map(|c| c.name()).collect();
    assert_eq!(names, ["writer", "reader"]);
    assert_eq!(
        list.by_access_key_id("AKIDREADER").unwrap().name(),
        "reader"
    );
    assert_eq!(
        list.by_name("writer").unwrap().access_key_id(),
        "AKIDWRITER"
    );
    assert!(
        list.by_access_key_id("akidreader").is_none(),
        "key ids are case-sensitive"
    );
    assert!(list.by_access_key_id("reader").is_none());
}

#[test]
fn the_highest_matching_access_wins() {
    let list = AccessList::parse(FILE, "access.toml").unwrap();
    let writer = list.by_name("writer").unwrap();
    // Read-write on one bucket, read-only on its zone: the bucket is read-write either way.
    assert_eq!(
        writer.access("data--usw2-az1--x-s3"),
        Some(Access::ReadWrite)
    );
    assert_eq!(
        writer.access("logs--usw2-az1--x-s3"),
        Some(Access::ReadOnly)
    );
    assert_eq!(writer.access("logs--use1-az4--x-s3"), None);
    assert_eq!(
        writer.access("gp-anything.with.dots"),
        Some(Access::ReadWrite)
    );
    assert_eq!(writer.access("xgp-bucket"), None, "globs are anchored");
    let reader = list.by_name("reader").unwrap();
    assert_eq!(
        reader.access("data--usw2-az1--x-s3"),
        Some(Access::ReadOnly)
    );
    // Order in the file does not matter.
    let text = client(
        "allow = [{ bucket = \"*\", access = \"read-write\" }, { bucket = \"b*\", access = \"read-only\" }]",
    );
    let list = AccessList::parse(&text, "t").unwrap();
    assert_eq!(
        list.by_name("a").unwrap().access("bucket"),
        Some(Access::ReadWrite)
    );
}

#[test]
fn globs_support_classes_and_alternatives() {
    let text = client("allow = [{ bucket = \"{logs,metrics}-[0-9]?\", access = \"read-only\" }]");
    let list = AccessList::parse(&text, "t").unwrap();
    let a = list.by_name("a").unwrap();
    assert_eq!(a.access("logs-12"), Some(Access::ReadOnly));
    assert_eq!(a.access("metrics-3x"), Some(Access::ReadOnly));
    assert_eq!(a.access("metrics-x3"), None);
    assert_eq!(a.access("traces-12"), None);
}

#[test]
fn an_empty_file_or_allow_list_lets_nobody_do_anything() {
    assert!(AccessList::parse("", "t").unwrap().is_empty());
    let list = AccessList::parse(&client(""), "t").unwrap();
    assert_eq!(list.by_name("a").unwrap().access("anything"), None);
}

#[test]
fn errors_name_the_file_and_the_line() {
    let dup_name = format!(
        "{}\n[[client]]\nname = \"a\"\naccess_key_id = \"AKIDB\"\nsecret_access_key = \"b-secret-0123456789\"\n",
        client("")
    );
    let e = error(&dup_name);
    assert_eq!(e.line, Some(7), "{e}");
    assert!(
        e.to_string()
            .starts_with("access.toml:7: a second client is named \"a\""),
        "{e}"
    );

    let dup_key = dup_name.replace(
        "name = \"a\"\naccess_key_id = \"AKIDB\"",
        "name = \"b\"\naccess_key_id = \"AKIDA\"",
    );
    let e = error(&dup_key);
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.message.contains("already another client's"), "{e}");

    let e = error(&client("allow = [{ bucket = \"x\", access = \"write\" }]"));
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("read-only"), "names the levels: {e}");

    let e = error(&client(
        "allow = [{ bucket = \"[a-\", access = \"read-only\" }]",
    ));
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("not a valid glob"), "{e}");

    let e = error(&client(
        "allow = [\n  { bucket = \"Upper*\", access = \"read-only\" },\n]",
    ));
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("lowercase"), "{e}");

    let e = error(&client(
        "allow = [{ bucket = \"\", access = \"read-only\" }]",
    ));
    assert!(e.message.contains("non-empty"), "{e}");

    let e = error(&client(
        "allow = [{ bucket = \"a\", access = \"read-only\", extra = 1 }]",
    ));
    assert!(e.message.contains("unknown field"), "{e}");

    let e = error("[[clients]]\nname = \"a\"\n");
    assert_eq!(e.line, Some(1), "{e}");
    assert!(
        e.message.contains("unknown field"),
        "a misspelt table is refused: {e}"
    );

    let e = error("[[client]]\nname = \"a\"\naccess_key_id = \"AKIDA\"\n");
    assert!(e.message.contains("secret_access_key"), "{e}");

    let e = error("[[client]]\nname = \"a\"\n  broken = = \n");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn names_and_key_ids_are_checked() {
    let bad_name = client("").replace("name = \"a\"", "name = \"a b\"");
    assert!(error(&bad_name).message.contains("name must be"));
    let empty_name = client("").replace("name = \"a\"", "name = \"\"");
    assert!(error(&empty_name).message.contains("name must be"));
    for id in ["", "AKID:A", "AKID/A", "AKID A", "S3XSABCDEF"] {
        let text = client("").replace("\"AKIDA\"", &format!("{id:?}"));
        let e = error(&text);
        assert!(e.message.contains("access_key_id"), "{id:?}: {e}");
        assert_eq!(e.line, Some(3), "{id:?}: {e}");
    }
}

#[test]
fn secrets_are_checked_and_never_quoted() {
    let secret = "a-secret-0123456789";
    for (bad, why) in [
        ("\"\"", "16 to 256"),
        ("\"short\"", "16 to 256"),
        ("\"has a space in it 0123\"", "visible ASCII"),
        ("\"caf\u{e9}-0123456789abcdef\"", "visible ASCII"),
        ("123456789012345678", "not shown"),
        ("[\"x\"]", "not shown"),
        ("\"unterminated", "not shown"),
    ] {
        let text = client("").replace(&format!("\"{secret}\""), bad);
        let e = error(&text);
        assert_eq!(e.line, Some(4), "{bad}: {e}");
        assert!(e.message.contains(why), "{bad}: {e}");
        let shown = e.to_string();
        let inner = bad.trim_matches('"');
        assert!(
            inner.len() < 3 || !shown.contains(inner),
            "{bad} leaked: {shown}"
        );
    }
    let list = AccessList::parse(&client(""), "t").unwrap();
    let debug = format!("{list:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(
        debug.contains("AKIDA") && debug.contains("[redacted]"),
        "{debug}"
    );
}

#[test]
fn a_missing_file_says_so() {
    let e = AccessList::load(Path::new("/nonexistent/access.toml")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/access.toml: cannot be read"),
        "{e}"
    );
}

#[test]
fn fingerprints_change_with_any_part_of_the_entry() {
    let base = AccessList::parse(&client(""), "t").unwrap();
    let fp = *base.by_name("a").unwrap().fingerprint();
    let variants = [
        client("").replace("name = \"a\"", "name = \"b\""),
        client("").replace("AKIDA", "AKIDB"),
        client("").replace("a-secret-0123456789", "a-secret-0123456780"),
        client("allow = [{ bucket = \"x\", access = \"read-only\" }]"),
    ];
    for text in variants {
        let list = AccessList::parse(&text, "t").unwrap();
        let other = list.clients().next().unwrap();
        assert_ne!(*other.fingerprint(), fp, "{text}");
    }
    let ro = AccessList::parse(
        &client("allow = [{ bucket = \"x\", access = \"read-only\" }]"),
        "t",
    )
    .unwrap();
    let rw = AccessList::parse(
        &client("allow = [{ bucket = \"x\", access = \"read-write\" }]"),
        "t",
    )
    .unwrap();
    assert_ne!(
        ro.clients().next().unwrap().fingerprint(),
        rw.clients().next().unwrap().fingerprint()
    );
    let again = AccessList::parse(&client(""), "t").unwrap();
    assert_eq!(*again.by_name("a").unwrap().fingerprint(), fp);
}
