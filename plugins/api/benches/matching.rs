//! Micro-benchmarks of the per-request work that is pure computation: image normalization,
//! kubelet pattern matching (one pattern, and a 1,000-key keyring lookup), request decoding.
//!
//!   cargo bench -p keyring-api --bench matching

use criterion::{criterion_group, criterion_main, Criterion};
use keyring_api::pattern::{urls_match, Keyring, Target};
use keyring_api::wire::decode_request;
use keyring_api::ImageName;
use std::hint::black_box;

fn normalization(c: &mut Criterion) {
    for image in [
        "nginx:1.25",
        "docker.io/library/nginx",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ] {
        c.bench_function(&format!("normalize {}", &image[..image.len().min(40)]), |b| {
            b.iter(|| ImageName::parse(black_box(image)))
        });
    }
}

fn matching(c: &mut Criterion) {
    let target = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app";
    c.bench_function("urls_match ECR glob", |b| {
        b.iter(|| urls_match(black_box("*.dkr.ecr.*.amazonaws.com"), black_box(target)))
    });
    let t = Target::new(target);
    c.bench_function("Target::matched_by ECR glob (target parsed once)", |b| {
        b.iter(|| t.matched_by(black_box("*.dkr.ecr.*.amazonaws.com")))
    });
    let mut keyring = Keyring::new();
    for i in 0..1000 {
        keyring
            .add(&format!("registry-{i}.example.com"), i)
            .unwrap();
    }
    let t = Target::new("registry-500.example.com/team/app");
    c.bench_function("keyring lookup, 1000 keys", |b| {
        b.iter(|| keyring.lookup(black_box(&t)).0.len())
    });
}

fn decoding(c: &mut Criterion) {
    let req = br#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"registry.example.com/team/app"}"#;
    c.bench_function("decode request", |b| {
        b.iter(|| decode_request(black_box(req)))
    });
}

criterion_group!(benches, normalization, matching, decoding);
criterion_main!(benches);
