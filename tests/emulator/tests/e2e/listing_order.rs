//! Directory buckets list out of key order (as S3 Express does), in a stable walk that pages.

use http::StatusCode;

use crate::express::{general, start, zonal};
use crate::support::{iam, Client, Creds};

/// The texts of every `<tag>` after `after` in a document.
fn all(text: &str, after: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("{after}<{tag}>"), format!("</{tag}>"));
    text.split(&open)
        .skip(1)
        .map(|s| s[..s.find(&close).unwrap()].to_string())
        .collect()
}

/// Every key and common prefix (as `P:prefix`) of a listing, page by page with max-keys 3.
async fn list_all(c: &mut Client, creds: &Creds, delimiter: &str) -> (Vec<String>, usize) {
    let (mut seen, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let mut q = vec![
            ("list-type", "2"),
            ("max-keys", "3"),
            ("delimiter", delimiter),
        ];
        if let Some(t) = &token {
            q.push(("continuation-token", t.as_str()));
        }
        let r = c.send("GET", "", &q, vec![], "", creds, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let text = r.text();
        seen.extend(all(&text, "<Contents>", "Key"));
        seen.extend(
            all(&text, "<CommonPrefixes>", "Prefix")
                .into_iter()
                .map(|p| format!("P:{p}")),
        );
        pages += 1;
        match r.xml("NextContinuationToken") {
            Some(t) => {
                assert!(!t.contains('/'), "tokens stay opaque: {t}");
                token = Some(t);
            }
            None => return (seen, pages),
        }
    }
}

#[tokio::test]
async fn directory_listings_are_not_sorted_but_page_through_every_key_once() {
    let emu = start().await;
    let (mut c, s) = zonal(&emu, true).await;
    let mut keys: Vec<String> = (0..12)
        .flat_map(|i| {
            [
                format!("k{i:02}"),
                format!("d{i:02}/x"),
                format!("d{i:02}/y/z"),
            ]
        })
        .collect();
    for k in &keys {
        c.send("PUT", k, &[], vec![], "v", &s, None).await;
    }
    keys.sort();
    let (listed, pages) = list_all(&mut c, &s, "").await;
    assert_eq!(pages, 12);
    assert_ne!(listed, keys, "S3 Express does not list in key order");
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, keys, "every key exactly once");
    // The same order every time.
    assert_eq!(list_all(&mut c, &s, "").await.0, listed);

    // With a delimiter, common prefixes take their place in the same walk.
    let (grouped, _) = list_all(&mut c, &s, "/").await;
    let mut expected: Vec<String> = (0..12)
        .flat_map(|i| [format!("k{i:02}"), format!("P:d{i:02}/")])
        .collect();
    expected.sort();
    let mut got = grouped.clone();
    got.sort();
    assert_eq!(got, expected);
    let first_of = |name: &str| {
        let dir = name.trim_start_matches("P:");
        listed.iter().position(|k| k.starts_with(dir)).unwrap()
    };
    let positions: Vec<usize> = grouped.iter().map(|n| first_of(n)).collect();
    // Within a page Contents come before CommonPrefixes, so compare page by page (3 a page).
    for page in positions.chunks(3).collect::<Vec<_>>().windows(2) {
        assert!(page[0].iter().max() < page[1].iter().min(), "{grouped:?}");
    }

    // General-purpose buckets list in key order.
    let mut gp = general(&emu).await;
    for k in ["b", "a/1", "c", "a/0"] {
        gp.send("PUT", k, &[], vec![], "v", &iam(), None).await;
    }
    let (gp_listed, _) = list_all(&mut gp, &iam(), "").await;
    assert_eq!(gp_listed, ["a/0", "a/1", "b", "c"]);
}
