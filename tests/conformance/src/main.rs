//! `virtplug-conformance`: runs the conformance suite against one plugin file. All logic lives in
//! the library (`virtplug_conformance::cli`); this only maps its result to the exit code.

fn main() -> std::process::ExitCode {
    virtplug_conformance::cli::main()
}
