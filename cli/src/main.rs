fn main() {
    eprintln!("openp2p: not built yet");
    std::process::exit(2);
}
