//! `build-image` and `run-image` without the AWS SDK and the network clients: see
//! src/cli/daily.rs.
fn main() {
    std::process::exit(dockerutils::daily_main(std::env::args_os().collect()));
}
