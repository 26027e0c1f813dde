//! The `omp` binary: parses the command line and reports errors as one clear line.

use clap::Parser;

fn main() {
    let cli = omp::cli::Cli::parse();
    let code = match omp::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` joins the context chain into one line: "cannot open store at …: reason".
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
