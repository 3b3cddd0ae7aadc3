//! The generative adversarial network family of the gen toolkit.
//!
//! A compiling skeleton: generator, discriminator, the alternating training with the
//! discriminator frozen during the generator step, and the balance diagnostics arrive with their
//! own issue, built on [`gen_core::Generator`] and [`gen_core::nn`].

pub use gen_core;
