//! Tests of `endpoint.rs`: AWS host names parse into their parts, and hosts are rebuilt from them.

use super::*;

fn zonal(bucket: &str, region: &str, fips: bool, dualstack: bool) -> Endpoint {
    Endpoint::Zonal {
        bucket: BucketName::parse(bucket).unwrap(),
        region: Region::parse(region).unwrap(),
        flavor: Flavor { fips, dualstack },
    }
}

#[test]
fn aws_hosts_parse_in_all_variants() {
    let cases: Vec<(&str, AwsHost<'_>)> = vec![
        (
            "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com",
            AwsHost::Zonal {
                bucket: "b--usw2-az1--x-s3",
                zone: "usw2-az1",
                region: "us-west-2",
                flavor: Flavor::default(),
            },
        ),
        (
            "b--use1-az4--x-s3.s3express-fips-use1-az4.dualstack.us-east-1.amazonaws.com",
            AwsHost::Zonal {
                bucket: "b--use1-az4--x-s3",
                zone: "use1-az4",
                region: "us-east-1",
                flavor: Flavor {
                    fips: true,
                    dualstack: true,
                },
            },
        ),
        (
            "s3express-control.cn-north-1.amazonaws.com.cn",
            AwsHost::Control {
                region: "cn-north-1",
                flavor: Flavor::default(),
            },
        ),
        (
            "s3.amazonaws.com",
            AwsHost::General {
                bucket: None,
                region: "us-east-1",
                flavor: Flavor::default(),
            },
        ),
        (
            "my.dotted.bucket.s3.amazonaws.com",
            AwsHost::General {
                bucket: Some("my.dotted.bucket"),
                region: "us-east-1",
                flavor: Flavor::default(),
            },
        ),
        (
            "logs.s3-fips.dualstack.us-gov-west-1.amazonaws.com",
            AwsHost::General {
                bucket: Some("logs"),
                region: "us-gov-west-1",
                flavor: Flavor {
                    fips: true,
                    dualstack: true,
                },
            },
        ),
        (
            "s3.dualstack.eu-west-1.amazonaws.com",
            AwsHost::General {
                bucket: None,
                region: "eu-west-1",
                flavor: Flavor {
                    fips: false,
                    dualstack: true,
                },
            },
        ),
    ];
    for (host, expected) in cases {
        assert_eq!(AwsHost::parse(host), Some(expected), "{host}");
    }
    for host in [
        "sts.amazonaws.com",
        "example.com",
        "amazonaws.com",
        "s3.amazonaws.com.evil.example",
        "b.c.s3express-usw2-az1.us-west-2.amazonaws.com",
        "ec2.us-west-2.amazonaws.com",
    ] {
        assert_eq!(AwsHost::parse(host), None, "{host}");
    }
    assert_eq!(
        AwsHost::parse("s3express-fips-usw2-az1.dualstack.us-west-2.amazonaws.com"),
        Some(AwsHost::ZonalPathStyle {
            zone: "usw2-az1",
            region: "us-west-2",
            flavor: Flavor {
                fips: true,
                dualstack: true
            },
        })
    );
    for host in [
        "s3express-usw2-az1.us-west-2.amazonaws.com",
        "b--usw2-az1--x-s3.s3.us-west-2.amazonaws.com",
        "b--usw2-az1--x-s3.s3.dualstack.us-west-2.amazonaws.com",
        "b--use1-az4--x-s3.s3.amazonaws.com",
    ] {
        assert!(AwsHost::is_s3_express(host), "{host}");
    }
    assert!(!AwsHost::is_s3_express("plain.s3.us-west-2.amazonaws.com"));
    assert!(AwsHost::is_s3_express(
        "s3express-control.us-west-2.amazonaws.com"
    ));
    assert!(!AwsHost::is_s3_express("s3.us-west-2.amazonaws.com"));
    assert!(AwsHost::is_s3("s3.us-west-2.amazonaws.com"));
}

#[test]
fn hosts_are_rebuilt_from_validated_parts() {
    assert_eq!(
        zonal("b--usw2-az1--x-s3", "us-west-2", false, false).host(),
        "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com"
    );
    assert_eq!(
        zonal("b--cnn1-az1--x-s3", "cn-north-1", true, true).host(),
        "b--cnn1-az1--x-s3.s3express-fips-cnn1-az1.dualstack.cn-north-1.amazonaws.com.cn"
    );
    let control = Endpoint::Control {
        region: Region::parse("us-east-1").unwrap(),
        flavor: Flavor {
            fips: true,
            dualstack: false,
        },
    };
    assert_eq!(
        control.host(),
        "s3express-control-fips.us-east-1.amazonaws.com"
    );
    let general = |name: &str| Endpoint::General {
        bucket: Some(GeneralBucketName::parse(name).unwrap()),
        region: Region::parse("eu-west-1").unwrap(),
        flavor: Flavor::default(),
    };
    assert_eq!(general("logs").host(), "logs.s3.eu-west-1.amazonaws.com");
    assert_eq!(general("logs").path_prefix(), None);
    assert_eq!(general("my.logs").host(), "s3.eu-west-1.amazonaws.com");
    assert_eq!(
        general("my.logs").path_prefix().as_deref(),
        Some("/my.logs")
    );
    assert_eq!(general("logs").service(), "s3");
    assert_eq!(control.service(), "s3express");
}

#[test]
fn every_rebuilt_host_parses_back_to_the_same_parts() {
    for (fips, dualstack) in [(false, false), (true, false), (false, true), (true, true)] {
        let endpoint = zonal("b--usw2-az1--x-s3", "us-west-2", fips, dualstack);
        let host = endpoint.host();
        match AwsHost::parse(&host) {
            Some(AwsHost::Zonal {
                bucket,
                zone,
                region,
                flavor,
            }) => {
                assert_eq!(
                    (bucket, zone, region),
                    ("b--usw2-az1--x-s3", "usw2-az1", "us-west-2")
                );
                assert_eq!(flavor, Flavor { fips, dualstack });
            }
            other => panic!("{host}: {other:?}"),
        }
    }
}

#[test]
fn a_host_must_name_the_buckets_own_zone() {
    let bucket = BucketName::parse("b--usw2-az1--x-s3").unwrap();
    assert!(zone_matches(&bucket, "usw2-az1").is_ok());
    assert_eq!(
        zone_matches(&bucket, "usw2-az2"),
        Err(NameError::ZoneMismatch)
    );
    assert_eq!(
        zone_matches(&bucket, "x@localhost"),
        Err(NameError::ZoneMismatch)
    );
}
