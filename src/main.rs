fn main() {
    std::process::exit(dockerutils::main(std::env::args_os().collect()));
}
