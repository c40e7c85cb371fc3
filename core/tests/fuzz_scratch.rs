#![cfg(feature = "fuzzing")]
#[test]
fn scratch() {
    let path = std::env::var("CASE").unwrap();
    let data = std::fs::read(&path).unwrap();
    match std::env::var("TARGET").unwrap().as_str() {
        "bucket" => openp2p_core::fuzzing::bucket(&data),
        "engine" => openp2p_core::fuzzing::engine(&data, std::time::Instant::now()),
        "lp" => openp2p_core::fuzzing::frame_length_prefixed(&data, std::time::Instant::now()),
        _ => openp2p_core::fuzzing::frame_delimited(&data, std::time::Instant::now()),
    }
}
