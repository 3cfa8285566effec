//! The package's exceptions: `DedaError` and one subclass per kind of input.
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

create_exception!(
    deda,
    DedaError,
    PyException,
    "Base of every error raised by deda."
);
create_exception!(
    deda,
    BankError,
    DedaError,
    "A part bank is missing, damaged or does not belong to the data set (the message names the bank folder, part or file)."
);
create_exception!(
    deda,
    DataError,
    DedaError,
    "A data set cannot be read (the message names the data set or file)."
);
create_exception!(
    deda,
    SampleError,
    DedaError,
    "One sample could not be produced (the message names its image file or part)."
);
create_exception!(
    deda,
    ConfigError,
    DedaError,
    "Invalid settings (combine or loader options), listing every problem."
);

/// `e`'s message and its chain of sources, `a: b: c` (each only if it adds something).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A [`BankError`] with `context` before `e`'s chain.
pub fn bank_error(context: &str, e: &dyn std::error::Error) -> PyErr {
    BankError::new_err(format!("{context}: {}", chain(e)))
}

/// A [`DataError`] with `context` before `e`'s chain.
pub fn data_error(context: &str, e: &dyn std::error::Error) -> PyErr {
    DataError::new_err(format!("{context}: {}", chain(e)))
}
