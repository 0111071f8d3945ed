use super::*;

// Verbatim from the S3 API reference for ListObjectsV2 ("Example 4: Using a continuation
// token").
const V2_CONTINUATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix></Prefix>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <KeyCount>1000</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>happyface.jpg</Key>
    <LastModified>2014-11-21T19:40:05.000Z</LastModified>
    <ETag>&quot;70ee1738b6b21e2c8a43f3a5ab0eee71&quot;</ETag>
    <Size>11</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
</ListBucketResult>"#;

// Verbatim from the same reference ("Example 3: Listing keys using the prefix and delimiter
// parameters").
const V2_DELIMITED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>example-bucket</Name>
  <Prefix>photos/2006/</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>photos/2006/</Key>
    <LastModified>2016-04-30T23:51:29.000Z</LastModified>
    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>
    <Size>0</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>

  <CommonPrefixes>
    <Prefix>photos/2006/February/</Prefix>
  </CommonPrefixes>
  <CommonPrefixes>
    <Prefix>photos/2006/January/</Prefix>
  </CommonPrefixes>
</ListBucketResult>"#;

// Verbatim from the S3 API reference for ListObjects (v1), "Sample Request Using Request
// Parameters": the shape a v1 answer must have.
const V1_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>quotes</Name>
  <Prefix>N</Prefix>
  <Marker>Ned</Marker>
  <MaxKeys>40</MaxKeys>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>Nelson</Key>
    <LastModified>2006-01-01T12:00:00.000Z</LastModified>
    <ETag>&quot;828ef3fdfa96f00ad9f27c383fc9ac7f&quot;</ETag>
    <Size>5</Size>
    <StorageClass>STANDARD</StorageClass>
    <Owner>
      <ID>bcaf161ca5fb16fd081034f</ID>
      <DisplayName>webfile</DisplayName>
     </Owner>
  </Contents>
  <Contents>
    <Key>Neo</Key>
    <LastModified>2006-01-01T12:00:00.000Z</LastModified>
    <ETag>&quot;828ef3fdfa96f00ad9f27c383fc9ac7f&quot;</ETag>
    <Size>4</Size>
    <StorageClass>STANDARD</StorageClass>
     <Owner>
      <ID>bcaf1ffd86a5fb16fd081034f</ID>
      <DisplayName>webfile</DisplayName>
    </Owner>
 </Contents>
</ListBucketResult>"#;

/// The v2 page S3 would give for the v1 sample's keys, URL-encoded as the proxy asks.
const V2_FOR_V1_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>quotes</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>40</MaxKeys><IsTruncated>false</IsTruncated><EncodingType>url</EncodingType><Contents><Key>Nelson</Key><LastModified>2006-01-01T12:00:00.000Z</LastModified><ETag>&quot;828ef3fdfa96f00ad9f27c383fc9ac7f&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass><Owner><ID>bcaf161ca5fb16fd081034f</ID><DisplayName>webfile</DisplayName></Owner></Contents><Contents><Key>Neo</Key><LastModified>2006-01-01T12:00:00.000Z</LastModified><ETag>&quot;828ef3fdfa96f00ad9f27c383fc9ac7f&quot;</ETag><Size>4</Size><StorageClass>STANDARD</StorageClass><Owner><ID>bcaf1ffd86a5fb16fd081034f</ID><DisplayName>webfile</DisplayName></Owner></Contents></ListBucketResult>"#;

fn names(page: &Page) -> Vec<&str> {
    page.entries.iter().map(Entry::name).collect()
}

fn plan(v1: bool, prefix: &str, marker: &str, max_keys: u32) -> Plan {
    Plan {
        bucket: "quotes".into(),
        v1,
        prefix: prefix.into(),
        delimited: false,
        max_keys,
        url: false,
        marker: marker.into(),
        token: None,
        start_after: None,
        fetch_owner: None,
    }
}

/// A tree without the whitespace between elements, to compare documents by content.
fn content(xml: &[u8]) -> Element {
    fn strip(mut e: Element) -> Element {
        if !e.children.is_empty() {
            e.text.clear();
            e.children = e.children.into_iter().map(strip).collect();
        }
        e
    }
    strip(parse_tree(std::str::from_utf8(xml).unwrap()).unwrap())
}

#[test]
fn reads_s3s_pages_with_their_token_and_every_field_of_an_object() {
    let page = parse(V2_CONTINUATION).unwrap();
    assert_eq!(names(&page), ["happyface.jpg"]);
    assert_eq!(
        page.next_token.as_deref(),
        Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    );
    let Entry::Object(object) = &page.entries[0] else {
        panic!("an object")
    };
    let fields: Vec<(&str, &str)> = object
        .rest
        .iter()
        .map(|e| (e.name.as_str(), e.text.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("LastModified", "2014-11-21T19:40:05.000Z"),
            ("ETag", "\"70ee1738b6b21e2c8a43f3a5ab0eee71\""),
            ("Size", "11"),
            ("StorageClass", "STANDARD"),
        ]
    );
    let page = parse(V2_DELIMITED).unwrap();
    assert_eq!(
        names(&page),
        [
            "photos/2006/February/",
            "photos/2006/January/",
            "photos/2006/"
        ],
        "common prefixes first, then objects"
    );
    assert_eq!(page.next_token, None);
}

#[test]
fn url_encoded_keys_are_decoded_once_and_plus_is_a_space() {
    let xml = r#"<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
<Contents><Key>odd/a%2Bb+c%25d%20e</Key></Contents><Contents><Key>odd/%C3%A9t%C3%A9//x%26y</Key></Contents>
<CommonPrefixes><Prefix>odd/%F0%9F%93%81/</Prefix></CommonPrefixes></ListBucketResult>"#;
    let page = parse(xml).unwrap();
    assert_eq!(names(&page), ["odd/📁/", "odd/a+b c%d e", "odd/été//x&y"]);
    let raw = r#"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b%20c</Key></Contents></ListBucketResult>"#;
    assert_eq!(
        names(&parse(raw).unwrap()),
        ["a+b%20c"],
        "not encoded: as is"
    );
}

#[test]
fn broken_pages_are_refused() {
    let no_token = r#"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"#;
    assert!(parse(no_token).is_err());
    assert!(parse("<Error><Code>InternalError</Code></Error>").is_err());
    assert!(parse("<ListBucketResult><Contents><Key>a").is_err());
    let keyless = r#"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"#;
    assert!(parse(keyless).is_err());
}

#[test]
fn a_v1_answer_has_the_shape_of_s3s() {
    let page = parse(V2_FOR_V1_SAMPLE).unwrap();
    let written = write(&plan(true, "N", "Ned", 40), &page.entries, Next::None);
    assert_eq!(content(&written), content(V1_SAMPLE.as_bytes()));
    assert!(written.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult"));
}

#[test]
fn a_truncated_v1_answer_names_its_next_marker_encoded_as_asked() {
    let mut plan = plan(true, "odd/a b", "", 2);
    plan.url = true;
    plan.delimited = true;
    let entries = vec![
        Entry::Prefix("odd/a b+/".into()),
        Entry::Object(Object {
            key: "odd/a b%é".into(),
            rest: Vec::new(),
        }),
    ];
    let last = last_name(&entries).unwrap();
    assert_eq!(last, "odd/a b%é");
    let tree = content(&write(&plan, &entries, Next::Marker(last)));
    let text = |name: &str| tree.child_text(name).unwrap().to_owned();
    assert_eq!(text("Prefix"), "odd/a%20b");
    assert_eq!(text("NextMarker"), "odd/a%20b%25%C3%A9");
    assert_eq!(text("Delimiter"), "/");
    assert_eq!(text("IsTruncated"), "true");
    assert_eq!(text("EncodingType"), "url");
    assert_eq!(
        tree.child("CommonPrefixes").unwrap().child_text("Prefix"),
        Some("odd/a%20b%2B/")
    );
    assert_eq!(
        tree.child("Contents").unwrap().child_text("Key"),
        Some("odd/a%20b%25%C3%A9")
    );
}

#[test]
fn a_v2_answer_counts_what_it_returns_and_passes_tokens_through() {
    let mut plan = plan(false, "photos/2006/J", "", 1000);
    plan.token = Some("client-token".into());
    let page = parse(V2_DELIMITED).unwrap();
    let kept: Vec<Entry> = page
        .entries
        .into_iter()
        .filter(|e| plan.keeps(e.name()))
        .collect();
    let tree = content(&write(&plan, &kept, Next::Token("next-token")));
    let text = |name: &str| tree.child_text(name).map(str::to_owned);
    assert_eq!(text("Prefix").as_deref(), Some("photos/2006/J"));
    assert_eq!(text("KeyCount").as_deref(), Some("1"));
    assert_eq!(text("ContinuationToken").as_deref(), Some("client-token"));
    assert_eq!(text("NextContinuationToken").as_deref(), Some("next-token"));
    assert_eq!(text("Marker"), None);
    assert_eq!(text("EncodingType"), None);
}

#[test]
fn a_written_page_is_the_same_bytes_as_before_its_writer_moved_to_xml_rs() {
    let mut plan = plan(false, "photos/&", "", 3);
    plan.url = true;
    plan.delimited = true;
    plan.token = Some("c&t".into());
    plan.start_after = Some("s<a".into());
    let entries = parse(V2_DELIMITED).unwrap().entries;
    let written = write(&plan, &entries, Next::Token("n\"t"));
    let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>quotes</Name><Prefix>photos/%26</Prefix><ContinuationToken>c&amp;t</ContinuationToken><NextContinuationToken>n&quot;t</NextContinuationToken><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><StartAfter>s%3Ca</StartAfter><EncodingType>url</EncodingType><Contents><Key>photos/2006/</Key><LastModified>2016-04-30T23:51:29.000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>photos/2006/February/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>photos/2006/January/</Prefix></CommonPrefixes></ListBucketResult>"#;
    assert_eq!(String::from_utf8(written).unwrap(), expected);
}
