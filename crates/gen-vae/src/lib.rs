//! The variational autoencoder family of the gen toolkit.
//!
//! A compiling skeleton: the Gaussian encoder, the reparameterisation, the ELBO, sampling,
//! interpolation and likelihood estimates arrive with their own issue, built on
//! [`gen_core::Encoder`], [`gen_core::Decoder`], [`gen_core::Generator`] and
//! [`gen_core::loss::GaussianKlLoss`].

pub use gen_core;
