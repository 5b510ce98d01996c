// Decides at build time whether the PostgreSQL half of the store tests runs, so that without
// LENDCORE_TEST_PG those tests show up as "ignored" with the reason, in every test summary,
// instead of passing silently.
fn main() {
    println!("cargo::rerun-if-env-changed=LENDCORE_TEST_PG");
    println!("cargo::rustc-check-cfg=cfg(lendcore_test_pg)");
    if std::env::var("LENDCORE_TEST_PG").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=lendcore_test_pg");
    }
}
