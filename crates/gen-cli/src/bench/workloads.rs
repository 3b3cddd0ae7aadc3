//! The workloads of `gen bench`, in the order they run: the reference autoencoders' training
//! steps (MLP, conv, the regularised variants), the VAEs', a DCGAN iteration, batch norm and
//! the DCGAN's convolutions (burn's against gen-core's), and encoder inference.

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use gen_ae::{AutoencoderConfig, Regularizer};
use gen_core::nn::{Activation, ImageShape};
use gen_core::noise::Noise;
use gen_core::train::FlushingAdam;
use gen_core::train::Workers;
use gen_core::{Batch, Encoder, Objective, Stage};
use gen_gan::{Adversary, GanConfig, discriminator_phase, generator_phase};
use gen_vae::VaeConfig;

use crate::backend::{BackendChoice, Job};
use rand::SeedableRng;

use super::{AE_TRAIN_FLOPS, BenchJob, BenchRow, ENC_FLOPS, VAE_TRAIN_FLOPS, reference_ae};

impl Job for BenchJob {
    type Output = Vec<BenchRow>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Vec<BenchRow>> {
        B::seed(&device, 0);
        let mut rows = Vec::new();
        let cfg = reference_ae();

        // (a) Training step of the reference MLP autoencoder, batch 128.
        let batches: Vec<Tensor<B, 2>> = (0..8)
            .map(|_| Tensor::random([128, 784], Distribution::Default, &device))
            .collect();
        let mut model = Some(cfg.init::<B>(&device));
        let mut optim = FlushingAdam::default().init();
        rows.extend(self.time("mlp_ae_train", 128, Some(AE_TRAIN_FLOPS), |i| {
            let m = model.take().expect("model");
            let loss = m.loss(batches[i % batches.len()].clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(optim.step(1e-3, m, grads));
            B::sync(&device).expect("device sync");
        }));

        // A convolutional autoencoder on 28x28 images (16 and 32 channels, code 32), batch 64:
        // where the CPU backends differ most (ndarray's convolutions are plain loops).
        let conv_cfg = AutoencoderConfig::conv(ImageShape::grey(28, 28), vec![16, 32], 32);
        let images: Vec<Tensor<B, 2>> = (0..8)
            .map(|_| Tensor::random([64, 784], Distribution::Default, &device))
            .collect();
        let mut conv = Some(conv_cfg.init::<B>(&device));
        let mut conv_optim = FlushingAdam::default().init();
        rows.extend(self.time("conv_ae_train", 64, None, |i| {
            let m = conv.take().expect("model");
            let loss = m.loss(images[i % images.len()].clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            conv = Some(conv_optim.step(1e-3, m, grads));
            B::sync(&device).expect("device sync");
        }));

        // The same MLP as a sparse autoencoder (KL and L1), a denoising one (Gaussian noise drawn
        // afresh each step) and a contractive one, exact (32 Jacobian rows propagated per sample)
        // and estimated from 4 random projections: what each variant costs over the plain step
        // above. Last, (c) of the PyTorch reference: a contractive autoencoder 784-256-784 with a
        // sigmoid code, λ = 1e-4, the exact penalty.
        let variants = [
            (
                "mlp_sparse_kl_train",
                cfg.clone()
                    .with_regularizer(Regularizer::SparseKl { rho: 0.05, beta: 1e-3 }),
            ),
            (
                "mlp_sparse_l1_train",
                cfg.clone().with_regularizer(Regularizer::SparseL1 { lambda: 1e-3 }),
            ),
            ("mlp_dae_train", cfg.clone().with_noise(Noise::Gaussian { sigma: 0.3 })),
            (
                "mlp_cae_train_exact",
                cfg.clone().with_regularizer(Regularizer::Contractive {
                    lambda: 1e-3,
                    projections: None,
                }),
            ),
            (
                "mlp_cae_train_proj4",
                cfg.clone().with_regularizer(Regularizer::Contractive {
                    lambda: 1e-3,
                    projections: Some(4),
                }),
            ),
            (
                "cae_784_256_train",
                AutoencoderConfig::mlp(784, vec![], 256)
                    .with_latent_activation(Activation::Sigmoid)
                    .with_regularizer(Regularizer::Contractive {
                        lambda: 1e-4,
                        projections: None,
                    }),
            ),
        ];
        for (name, variant) in variants {
            let mut m = Some(variant.init::<B>(&device));
            let mut opt = FlushingAdam::default().init();
            rows.extend(self.time(name, 128, None, |i| {
                let model = m.take().expect("model");
                let batch = Batch {
                    x: batches[i % batches.len()].clone(),
                    y: None,
                };
                let loss = model.objective(&batch, Stage::Train).total;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                m = Some(opt.step(1e-3, model, grads));
                B::sync(&device).expect("device sync");
            }));
        }

        // The MLP VAE of the PyTorch reference (784-512-256, 20 latent dimensions, Bernoulli
        // decoder, batch 128) and a convolutional VAE (16 and 32 channels, 32 dimensions,
        // batch 64): encoder, reparameterised sample, decoder, ELBO, backward and Adam.
        let vaes = [
            (
                "mlp_vae_train",
                VaeConfig::mlp(784, vec![512, 256], 20),
                128,
                Some(VAE_TRAIN_FLOPS),
            ),
            (
                "conv_vae_train",
                VaeConfig::conv(ImageShape::grey(28, 28), vec![16, 32], 32),
                64,
                None,
            ),
        ];
        for (name, vcfg, batch, flops) in vaes {
            let data: Vec<Tensor<B, 2>> = (0..8)
                .map(|_| Tensor::random([batch, 784], Distribution::Default, &device))
                .collect();
            let mut m = Some(vcfg.init::<B>(&device));
            let mut opt = FlushingAdam::default().init();
            rows.extend(self.time(name, batch, flops, |i| {
                let model = m.take().expect("model");
                let batch = Batch {
                    x: data[i % data.len()].clone(),
                    y: None,
                };
                let loss = model.objective(&batch, Stage::Train).total;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                m = Some(opt.step(1e-3, model, grads));
                B::sync(&device).expect("device sync");
            }));
        }

        // (d) One DCGAN iteration of the PyTorch reference's DCGAN-small, batch 64: noise 64 ->
        // 128x7x7 (batch norm) -> 64x14x14 (batch norm) -> 1x28x28; discriminator 1 -> 64 -> 128
        // channels -> 1; non-saturating loss, Adam(2e-4, 0.5) on each side. A discriminator
        // step on real and detached fakes, then a generator step through the frozen
        // discriminator on the same fakes.
        let gan_cfg = GanConfig::dcgan(ImageShape::grey(28, 28));
        let (g, d) = gan_cfg.try_init::<B>(&device)?;
        let (mut g, mut d) = (Some(g), Some(d));
        let adam = || FlushingAdam {
            beta_1: 0.5,
            ..FlushingAdam::default()
        };
        let (mut opt_g, mut opt_d) = (adam().init(), adam().init());
        // ndarray's own transposed convolution is plain loops (a few images per second): when
        // gen-core's convolutions are switched off (`GEN_FAST_CONV=0`), one short timed run
        // there keeps the bench within minutes.
        let timer = if self.backend == BackendChoice::Ndarray && !gen_core::nn::fastconv::has_fast_conv::<B>() {
            BenchJob {
                warmup: 1,
                runs: 1,
                steps: 2,
                ..self.clone()
            }
        } else {
            self.clone()
        };
        rows.extend(timer.time("dcgan_train", 64, None, |i| {
            let (gm, dm) = (g.take().expect("generator"), d.take().expect("discriminator"));
            let batch = Batch {
                x: images[i % images.len()].clone(),
                y: None,
            };
            let (fakes, labels) = gm.fakes(&batch);
            let ds = discriminator_phase(
                &gan_cfg,
                dm,
                &gm,
                &mut opt_d,
                2e-4,
                &batch,
                fakes.clone(),
                labels.clone(),
                Workers::ALONE,
            )
            .expect("one worker reduces nothing");
            let gs = generator_phase(
                &gan_cfg,
                gm,
                &ds.discriminator,
                &mut opt_g,
                2e-4,
                &batch,
                fakes,
                labels,
                Workers::ALONE,
            )
            .expect("one worker reduces nothing");
            g = Some(gs.generator);
            d = Some(ds.discriminator);
            B::sync(&device).expect("device sync");
        }));

        // Batch norm of the DCGAN generator's two maps (64x128x7x7 and 64x64x14x14), forward
        // and backward: burn's `nn::BatchNorm` against ours (`gen_core::nn::BatchNorm`, the same
        // function arranged for Flex's fast paths), the one change measured in one run.
        let maps: Vec<(Tensor<B, 4>, Tensor<B, 4>)> = [[64, 128, 7, 7], [64, 64, 14, 14]]
            .into_iter()
            .map(|shape| {
                (
                    Tensor::random(shape, Distribution::Normal(0.5, 2.0), &device),
                    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device),
                )
            })
            .collect();
        let theirs: Vec<burn::nn::BatchNorm<B>> = [128, 64]
            .iter()
            .map(|&c| burn::nn::BatchNormConfig::new(c).init(&device))
            .collect();
        let ours: Vec<gen_core::nn::BatchNorm<B>> = [128, 64]
            .iter()
            .map(|&c| gen_core::nn::BatchNormConfig::new(c).init(&device))
            .collect();
        // One forward and backward pass over both maps, the same for both modules.
        let step = |forward: &dyn Fn(usize, Tensor<B, 4>) -> Tensor<B, 4>| {
            for (i, (x, up)) in maps.iter().enumerate() {
                let x = x.clone().require_grad();
                let grads = (forward(i, x.clone()) * up.clone()).sum().backward();
                drop(x.grad(&grads));
            }
            B::sync(&device).expect("device sync");
        };
        rows.extend(self.time("batchnorm_burn_train", 64, None, |_| step(&|i, x| theirs[i].forward(x))));
        rows.extend(self.time("batchnorm_gen_train", 64, None, |_| step(&|i, x| ours[i].forward(x))));

        // The DCGAN's four convolutions (the discriminator's 1→64→128, the generator's
        // 128→64→1), forward and backward with input and weight gradients: burn's functions
        // against gen-core's, whose weight gradient is one matrix product (registered for Flex
        // and ndarray by `with_backend`), the one change measured in one run.
        let conv_options = burn::tensor::ops::ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let deconv_options = burn::tensor::ops::ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let normal = |shape: [usize; 4]| Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        // (transposed, input, weight, upstream gradient)
        let layers: Vec<(bool, [Tensor<B, 4>; 3])> = [
            (false, [64, 1, 28, 28], [64, 1, 4, 4], [64, 64, 14, 14]),
            (false, [64, 64, 14, 14], [128, 64, 4, 4], [64, 128, 7, 7]),
            (true, [64, 128, 7, 7], [128, 64, 4, 4], [64, 64, 14, 14]),
            (true, [64, 64, 14, 14], [64, 1, 4, 4], [64, 1, 28, 28]),
        ]
        .into_iter()
        .map(|(transposed, x, w, y)| (transposed, [normal(x), normal(w), normal(y)]))
        .collect();
        let conv_step = |ours: bool| {
            for (transposed, [x, w, up]) in &layers {
                let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
                let y = match (transposed, ours) {
                    (false, false) => burn::tensor::module::conv2d(x.clone(), w.clone(), None, conv_options.clone()),
                    (false, true) => gen_core::nn::conv2d(x.clone(), w.clone(), None, conv_options.clone()),
                    (true, false) => {
                        burn::tensor::module::conv_transpose2d(x.clone(), w.clone(), None, deconv_options.clone())
                    }
                    (true, true) => gen_core::nn::conv_transpose2d(x.clone(), w.clone(), None, deconv_options.clone()),
                };
                let grads = (y * up.clone()).sum().backward();
                drop((x.grad(&grads), w.grad(&grads)));
            }
            B::sync(&device).expect("device sync");
        };
        rows.extend(timer.time("conv_burn_train", 64, None, |_| conv_step(false)));
        rows.extend(timer.time("conv_gen_train", 64, None, |_| conv_step(true)));

        // (e) Encoder inference of the same model, batch 1024, without autodiff.
        let encoder = model.take().expect("model").valid();
        let inputs: Vec<Tensor<B::InnerBackend, 2>> = (0..4)
            .map(|_| Tensor::random([1024, 784], Distribution::Default, &device))
            .collect();
        rows.extend(self.time("encoder_inference", 1024, Some(ENC_FLOPS), |i| {
            let z = encoder.encode(inputs[i % inputs.len()].clone());
            B::InnerBackend::sync(&device).expect("device sync");
            drop(z);
        }));
        rows.extend(self.data_parallel_rows::<B>(&device)?);
        Ok(rows)
    }
}

impl BenchJob {
    /// Data-parallel training against one worker, both through `Trainer::fit` on the reference
    /// MLP autoencoder (batch 128, random rows): one worker on a pool of every thread, and as
    /// many workers as threads, each on a pool of one, summing their gradients with
    /// burn-collective at every step. A timed run is one `fit` of `--steps` batches (after one
    /// of `--warmup` batches), so the joining, forking and leaving of the collective count too.
    fn data_parallel_rows<B: AutodiffBackend>(&self, device: &B::Device) -> anyhow::Result<Vec<BenchRow>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let warm = std::sync::Arc::new(super::random_rows(&mut rng, self.warmup.max(1) * 128, 784)?);
        let timed = std::sync::Arc::new(super::random_rows(&mut rng, self.steps * 128, 784)?);
        let model = reference_ae().init::<B>(device);
        let cfg = gen_core::train::TrainConfig::default()
            .with_num_epochs(1)
            .with_batch_size(128)
            .with_seed(0);
        let mut rows = Vec::new();
        let threads = rayon::current_num_threads().max(2);
        for (workload, workers) in [("mlp_ae_fit_1worker", 1), ("mlp_ae_fit_workers", threads)] {
            if !self.selected(workload) {
                continue;
            }
            // One fit of `data`, through the workers `gen train --workers` runs.
            let fit = |data: &std::sync::Arc<gen_data::Dataset>| -> anyhow::Result<()> {
                let worker = |rank: usize| {
                    let (model, cfg, data, device) = (model.clone(), cfg.clone(), data.clone(), device.clone());
                    move || -> anyhow::Result<()> {
                        let mut trainer = gen_core::train::Trainer::new(cfg)?;
                        if workers > 1 {
                            trainer = trainer.with_data_parallel(gen_core::train::DataParallel::local(rank, workers));
                        }
                        trainer.fit(
                            model,
                            &*data,
                            None::<&gen_data::Dataset>,
                            &serde_json::json!({}),
                            &device,
                        )?;
                        Ok(())
                    }
                };
                crate::parallel::run_workers((1..workers).map(worker).collect(), worker(0))
            };
            rows.push(self.time_runs(
                workload,
                128,
                Some(AE_TRAIN_FLOPS),
                || fit(&warm),
                || fit(&timed).map(|()| self.steps),
            )?);
        }
        Ok(rows)
    }
}
