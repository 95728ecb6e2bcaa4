fn main() -> std::process::ExitCode {
    minik::main()
}
