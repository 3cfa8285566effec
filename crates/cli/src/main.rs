//! `deda`: Decoupled Data Augmentation from the command line.
//!
//! The binary holds no method logic: it parses arguments, loads and validates configs, calls one
//! library function per subcommand, writes reports, and maps errors to exit codes
//! (0 ok, 1 run failed, 2 usage or configuration error).
// Argument doc comments are clap's `--help` text, written for a terminal (`<bank>/embeddings`,
// `KIND:PATH`, `[x, y]`), not for rustdoc's HTML.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod args;
mod chain;
mod checkpoint;
mod cmd_bank;
mod cmd_bench;
mod cmd_build_set;
mod cmd_decouple;
mod cmd_demo;
mod cmd_diversity;
mod cmd_doctor;
mod cmd_edit;
mod cmd_eval;
mod cmd_experiment;
mod cmd_generate;
mod cmd_invert;
mod cmd_predict;
mod cmd_reproduce;
mod cmd_run;
mod cmd_train;
mod data_spec;
mod experiment;
mod pipeline;
mod progress;
mod provenance;
mod report;
mod stages;
mod training;

/// Decoupled Data Augmentation (De-DA) for image classification.
#[derive(Parser)]
#[command(name = "deda", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the De-DA pipeline end to end on the embedded photos and write a report.
    Demo(cmd_demo::DemoArgs),
    /// Build a real mini-benchmark (mini-Waterbirds, scarce multi-class) from photo cut-outs.
    BuildSet(cmd_build_set::BuildSetArgs),
    /// Split a data set's training images into CDPs and CIPs in a part bank.
    Decouple(cmd_decouple::DecoupleArgs),
    /// Add synthetic CDPs (edits of each real CDP) to a part bank.
    Edit(cmd_edit::EditArgs),
    /// Generate a generative peer's whole images (DA-Fusion, Diff-Mix, DiffuseMix,
    /// Real-Guidance) of every training image into a part bank.
    Generate(cmd_generate::GenerateArgs),
    /// Learn one token per class of a part bank (truncated-timestep textual inversion).
    Invert(cmd_invert::InvertArgs),
    /// Inspect, verify or merge a part bank.
    #[command(subcommand)]
    Bank(cmd_bank::BankCommand),
    /// Train and evaluate a classifier from a TOML recipe (see configs/).
    Train(cmd_train::TrainArgs),
    /// Run a whole recipe: the offline stages it declares whose outputs are missing or were made
    /// with other settings (decouple, invert, edit), then training; --plan shows what and the cost.
    Run(cmd_run::RunArgs),
    /// Evaluate a trained model (run folder or weight file) on a data set: top-1, per class,
    /// per group; writes eval.json and eval.md.
    Eval(cmd_eval::EvalArgs),
    /// Classify images with a trained model: top-k classes with probabilities.
    Predict(cmd_predict::PredictArgs),
    /// Check the environment (libtorch, CUDA, ONNX Runtime, Hugging Face cache, disk) and say
    /// what to do about each problem.
    Doctor(cmd_doctor::DoctorArgs),
    /// Train every cell of a paper table that is not done yet and write the table with the
    /// paper's numbers beside ours (works on partial results).
    Reproduce(cmd_reproduce::ReproduceArgs),
    /// PSNR diversity (paper Fig. 5b) of a bank's edits and of De-DA's combinations.
    Diversity(cmd_diversity::DiversityArgs),
    /// Run a real mini-benchmark (build the set, decouple, train every method and seed, tabulate).
    Experiment(cmd_experiment::ExperimentArgs),
    /// Time the training step or the De-DA combination path (one JSON line).
    #[command(subcommand)]
    Bench(cmd_bench::BenchCommand),
}

/// An error in how the tool was called (bad flags, invalid config): exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => cmd_demo::run(a),
        Command::BuildSet(a) => cmd_build_set::run(a),
        Command::Decouple(a) => cmd_decouple::run(a),
        Command::Edit(a) => cmd_edit::run(a),
        Command::Generate(a) => cmd_generate::run(a),
        Command::Invert(a) => cmd_invert::run(a),
        Command::Bank(c) => cmd_bank::run(c),
        Command::Train(a) => cmd_train::run(a),
        Command::Run(a) => cmd_run::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Predict(a) => cmd_predict::run(a),
        Command::Doctor(a) => cmd_doctor::run(a),
        Command::Reproduce(a) => cmd_reproduce::run(a),
        Command::Bench(c) => cmd_bench::run(c),
        Command::Experiment(a) => cmd_experiment::run(a),
        Command::Diversity(a) => cmd_diversity::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deda: error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
