fn main() -> std::process::ExitCode {
    spoor_segmenter::cli::main()
}
