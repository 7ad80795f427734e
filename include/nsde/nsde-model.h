/**
 * @file
 * libnsde - the paper's classifiers: stem, SDE block, head; passes, test-time
 * noise ensembles, the training loss and model files.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_MODEL_H
#define NSDE_MODEL_H

#include <nsde/nsde-net.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Architecture (paper, section 5). */
enum nsde_model_arch {
  /** conv(C->w, 3x3, no padding) -> SDE block -> GN-ReLU-pool-Linear @since 1.0
   *  */
  NSDE_MODEL_ARCH_CIFAR = 0,
  /** conv(3x3,pad 1)-GN-ReLU-conv(4x4,s2)-GN-ReLU-conv(4x4,s2) stem, channels w/4, w/2, w
   *  (STL-10 / Tiny-ImageNet model) @since 1.0 */
  NSDE_MODEL_ARCH_LARGE = 1
};

/** Noise of the SDE block (paper, section 2). */
enum nsde_model_noise {
  NSDE_MODEL_NOISE_ODE = 0,            /**< no noise: the Neural ODE @since 1.0 */
  NSDE_MODEL_NOISE_ADDITIVE = 1,       /**< G = sigma @since 1.0 */
  NSDE_MODEL_NOISE_MULTIPLICATIVE = 2, /**< G = sigma h @since 1.0 */
  NSDE_MODEL_NOISE_DROPOUT = 3         /**< G = sigma f(h, t) @since 1.0 */
};

/** Model options; initialise with nsde_model_config_init(). */
struct nsde_model_config {
  size_t size;                  /**< sizeof(struct nsde_model_config) */
  enum nsde_model_arch arch;    /**< stem in front of the SDE block (NSDE_MODEL_ARCH_CIFAR) */
  int in_channels;              /**< image channels (3) */
  int in_height;                /**< image height (32) */
  int in_width;                 /**< image width (32) */
  int width;                    /**< channels of the SDE block (64) */
  int groups;                   /**< GroupNorm groups: 0 is the paper's min(32, channels);
                                       narrow models need fewer (one channel per group
                                       normalises every feature map to the same statistics) */
  int classes;                  /**< 10 */
  enum nsde_model_noise noise;  /**< the SDE block's noise (NSDE_MODEL_NOISE_MULTIPLICATIVE) */
  double sigma;                 /**< noise scale */
  bool learn_sigma;             /**< true: sigma is a trained parameter (last in the buffer) */
  double t1;                    /**< integration time T (1) */
  double dt;                    /**< step h (0.1): the paper's N = int(T/h) + 1 steps */
  enum nsde_grad_strategy grad; /**< gradient strategy (NSDE_GRAD_CHECKPOINT) */
  int64_t max_batch;            /**< largest batch (128) */
  uint64_t init_seed;           /**< parameter initialisation */
};

/** The paper's CIFAR-10 model with multiplicative noise, sigma 1.0. @since 1.0 */
NSDE_API void nsde_model_config_init(struct nsde_model_config *cfg);

/** A classifier: stem network, SDE block with a network drift, head. */
struct nsde_model;

/**
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (config), NSDE_ERR_SHAPE,
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_new(struct nsde_context *ctx,
                                                        const struct nsde_model_config *cfg,
                                                        struct nsde_model **out);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_model_free(struct nsde_model *m);
/**
 * The configuration the model was made with, copied to @p cfg: set
 * cfg->size = sizeof(*cfg) first and at most that many bytes are written
 * (a size field below the 1.0 layout's size, or unset, gets the 1.0 layout).
 * @return NSDE_OK, NSDE_ERR_NULL. @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_get_config(const struct nsde_model *m,
                                                               struct nsde_model_config *cfg);
/** Number of parameters (-1 for NULL): the network weights, plus sigma if learned. @since 1.0 */
NSDE_API int64_t nsde_model_num_params(const struct nsde_model *m);
/** All parameters in one buffer (borrowed, writable; nsde_model_num_params()
 *  floats), NULL for NULL. @since 1.0 */
NSDE_API float *nsde_model_params(struct nsde_model *m);
/** Their gradients, the same layout and length (borrowed), written by
 *  nsde_model_loss_grad(). @since 1.0 */
NSDE_API float *nsde_model_grads(struct nsde_model *m);
/** nsde_model_params(), read-only, from a const handle. @since 1.0 */
NSDE_API const float *nsde_model_params_const(const struct nsde_model *m);
/** nsde_model_grads(), read-only, from a const handle. @since 1.0 */
NSDE_API const float *nsde_model_grads_const(const struct nsde_model *m);
/** Call after changing nsde_model_params() by hand (sigma is copied into the SDE).
 *  @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_params_changed(struct nsde_model *m);

/**
 * Logits for a batch: images (B, C, H, W) float32 in [0, 1], logits (B, classes).
 * @p noisy 0 integrates without noise (deterministic); 1 samples one Brownian
 * path per image from @p seed (image b of the batch uses path index b).
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_DTYPE,
 *         NSDE_ERR_NONFINITE, NSDE_ERR_NOMEM (a new batch size needs a solver).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_forward(struct nsde_model *m,
                                                            const struct nsde_tensor *images,
                                                            bool noisy, uint64_t seed,
                                                            struct nsde_tensor *logits);

/** The SDE block's state shape (C, H, W) per image.
 *  @return NSDE_OK, NSDE_ERR_NULL (m or an output pointer NULL). @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_model_get_state_shape(const struct nsde_model *m, int *channels, int *height, int *width);

/**
 * The SDE block's hidden states along the way (the paper's Fig. 4): stem,
 * then Euler-Maruyama with @p n_steps equal steps on [0, T] (t_k = k T /
 * n_steps fed to the drift), noise from @p seed if @p noisy. @p states
 * receives the n_steps + 1 states h(t_0) .. h(t_n), each (B, C, H, W) NCHW,
 * one after another: a contiguous float32 tensor of (n_steps + 1) B C H W
 * elements, any shape.
 * @return as nsde_model_forward(), plus NSDE_ERR_INVALID (n_steps < 1 or > 100000).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_model_trajectory(struct nsde_model *m, const struct nsde_tensor *images, bool noisy,
                      uint64_t seed, int64_t n_steps, struct nsde_tensor *states);

/**
 * Test-time noise ensemble: the sum of the softmax probabilities of
 * @p passes noisy passes (seeds seed, seed+1, ...), written to @p probs
 * (B, classes) and divided by passes. passes = 0: one deterministic pass.
 * A Neural ODE model (NSDE_MODEL_NOISE_ODE) has no noise: every pass would be the
 * same, so one pass is computed whatever @p passes is.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (passes < 0), NSDE_ERR_SHAPE
 *         (images not (B, C, H, W) float32 of the model's image size with B
 *         <= max_batch, probs not contiguous (B, classes) float32),
 *         NSDE_ERR_NONFINITE (a non-finite image or hidden state),
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_predict(struct nsde_model *m,
                                                            const struct nsde_tensor *images,
                                                            int passes, uint64_t seed,
                                                            struct nsde_tensor *probs);

/**
 * One training pass: softmax cross-entropy of the logits of ONE noisy forward
 * pass (one Brownian path per image, from @p seed), and the gradient of the
 * mean loss with respect to every parameter, written to nsde_model_grads().
 * Optionally dL/dimages (adversarial attacks), loss and correct count.
 * @param labels  B class indices in [0, classes)
 * @param noisy   0 trains the noise-free model (as for the ODE)
 * @return as nsde_model_forward(), plus NSDE_ERR_INVALID (a label out of range).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_model_loss_grad(struct nsde_model *m, const struct nsde_tensor *images, const int32_t *labels,
                     bool noisy, uint64_t seed, struct nsde_tensor *grad_images, double *loss,
                     int64_t *correct);

/** Losses for nsde_model_loss_grad_opts(). */
enum nsde_model_loss {
  /** softmax cross-entropy (nsde_model_loss_grad) @since 1.0 */
  NSDE_MODEL_LOSS_CROSS_ENTROPY = 0,
  /** Carlini-Wagner: max(z_y - max_{j != y} z_j, -kappa) @since 1.0 */
  NSDE_MODEL_LOSS_CW_MARGIN = 1
};

/** Options and optional outputs of nsde_model_loss_grad_opts(); initialise
 *  with nsde_loss_options_init(). */
struct nsde_loss_options {
  size_t size;                     /**< sizeof(struct nsde_loss_options) */
  enum nsde_model_loss kind;       /**< the loss on the logits (NSDE_MODEL_LOSS_CROSS_ENTROPY) */
  double kappa;                    /**< confidence margin >= 0, CW only (0) */
  struct nsde_tensor *grad_images; /**< receives dL/dimages, or NULL (NULL) */
  double *loss;                    /**< receives the mean loss, or NULL (NULL) */
  int64_t *correct;                /**< receives the number classified right, or NULL */
  double *per_image;               /**< receives each image's loss (B doubles), or NULL */
  /** true: compute dL/dimages (and the loss) only; the parameter
   *  gradients are skipped and nsde_model_grads() reads zeros. For attacks
   *  and saliency: the weight gradients are about a quarter of a training
   *  pass's work. (false) @since 1.0 */
  bool no_param_grads;
};

/** Defaults: cross-entropy, no optional output. @since 1.0 */
NSDE_API void nsde_loss_options_init(struct nsde_loss_options *opts);

/**
 * nsde_model_loss_grad() with a choice of loss on the logits (mean over the
 * batch) and its optional outputs in @p opts (NULL: the defaults).
 * @return as nsde_model_loss_grad(), plus NSDE_ERR_INVALID (unknown loss, bad
 *         kappa, a bad size field), NSDE_ERR_UNSUPPORTED (an option this
 *         library does not know is set).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_model_loss_grad_opts(struct nsde_model *m, const struct nsde_tensor *images,
                          const int32_t *labels, bool noisy, uint64_t seed,
                          const struct nsde_loss_options *opts);

/**
 * Save parameters and configuration to @p path atomically (a temporary file
 * in the same directory, fsync, rename): a crash leaves the old file or the
 * new one, never a broken one. Format in doc/model.md (version 1, checksummed).
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_IO (with the system's reason).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_save(const struct nsde_model *m,
                                                         const char *path);

/**
 * Load a model saved by nsde_model_save(). Truncated, corrupted (checksum),
 * foreign or wrong-version files are refused with NSDE_ERR_FORMAT and a
 * message naming the file and the problem.
 * @param max_batch  the largest batch the loaded model will see
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_IO, NSDE_ERR_FORMAT, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_model_load(struct nsde_context *ctx, const char *path,
                                                         int64_t max_batch,
                                                         struct nsde_model **out);

#ifdef __cplusplus
}
#endif
#endif
