/* Pathwise gradients: closed forms, finite differences, strategy agreement,
 * memory, the vjp checker, errors. SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <malloc.h>

static struct nsde_context *ctx;
static void setup(void)
{
  ctx = test_ctx();
}
static void teardown(void)
{
  nsde_context_free(ctx);
}

/* ---- a small tanh MLP drift, per batch item: f(x) = W2 tanh(W1 x + b1) + b2 + c t x ---- */
#define D 3
#define H 4
#define NP (H * D + H + D * H + D + 1)

struct mlp {
  double p[NP];
  int fail_vjp; /* make the vjp fail (error tests) */
  int bad_grad; /* corrupt one parameter gradient (checker tests) */
};

static void mlp_fwd(const double *p, double t, const double *x, double *a, double *f)
{
  const double *W1 = p, *b1 = p + H * D, *W2 = p + H * D + H, *b2 = W2 + D * H, c = b2[D];
  for (int h = 0; h < H; h++) {
    double s = b1[h];
    for (int j = 0; j < D; j++)
      s += W1[h * D + j] * x[j];
    a[h] = tanh(s);
  }
  for (int i = 0; i < D; i++) {
    double s = b2[i] + c * t * x[i];
    for (int h = 0; h < H; h++)
      s += W2[i * H + h] * a[h];
    f[i] = s;
  }
}

static int mlp_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  struct mlp *m = user;
  double a[H];
  ck_assert_int_eq(dim, D);
  for (int64_t b = 0; b < batch; b++)
    mlp_fwd(m->p, t, (const double *)x + b * D, a, (double *)out + b * D);
  return 0;
}

static int mlp_vjp(void *user, double t, int64_t batch, int64_t dim, const void *x, const void *v,
                   void *grad_x, void *grad_params)
{
  struct mlp *m = user;
  const double *p = m->p, *W1 = p, *W2 = p + H * D + H;
  double *gp = grad_params;
  if (m->fail_vjp)
    return -4;
  (void)dim;
  for (int64_t b = 0; b < batch; b++) {
    const double *xb = (const double *)x + b * D, *vb = (const double *)v + b * D;
    double *gx = (double *)grad_x + b * D, a[H], f[D], da[H];
    mlp_fwd(p, t, xb, a, f);
    for (int j = 0; j < D; j++)
      gx[j] = p[NP - 1] * t * vb[j];
    for (int h = 0; h < H; h++) {
      double s = 0;
      for (int i = 0; i < D; i++)
        s += W2[i * H + h] * vb[i];
      da[h] = s * (1 - a[h] * a[h]);
      for (int j = 0; j < D; j++)
        gx[j] += W1[h * D + j] * da[h];
    }
    if (gp) {
      for (int h = 0; h < H; h++) {
        for (int j = 0; j < D; j++)
          gp[h * D + j] += da[h] * xb[j];
        gp[H * D + h] += da[h];
      }
      for (int i = 0; i < D; i++) {
        for (int h = 0; h < H; h++)
          gp[H * D + H + i * H + h] += vb[i] * a[h];
        gp[H * D + H + D * H + i] += vb[i];
        gp[NP - 1] += vb[i] * t * xb[i];
      }
      if (m->bad_grad)
        gp[5] += 0.01 * vb[0];
    }
  }
  return 0;
}

static int mlp_diag(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  struct mlp *m = user;
  const double *W1 = m->p, *W2 = m->p + H * D + H;
  (void)dim;
  for (int64_t b = 0; b < batch; b++) {
    double a[H], f[D];
    mlp_fwd(m->p, t, (const double *)x + b * D, a, f);
    for (int i = 0; i < D; i++) {
      double s = m->p[NP - 1] * t;
      for (int h = 0; h < H; h++)
        s += W2[i * H + h] * (1 - a[h] * a[h]) * W1[h * D + i];
      ((double *)out)[b * D + i] = s;
    }
  }
  return 0;
}

static struct nsde_func *mlp_new(struct mlp *m, int seed)
{
  struct nsde_func_ops ops = {sizeof(ops), mlp_eval, mlp_vjp, mlp_diag, NULL};
  struct nsde_func *f;
  uint64_t st = (uint64_t)seed * 2654435761u + 1;
  memset(m, 0, sizeof(*m));
  for (int i = 0; i < NP; i++) {
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    m->p[i] = ((double)(st >> 11) * 0x1.0p-53 - 0.5) * 1.2;
  }
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, m, NP, m->p, &f), NSDE_OK);
  return f;
}

/* ---- problem plumbing ---------------------------------------------------------- */

enum diffkind { DIFF_NONE, DIFF_ADD, DIFF_MUL, DIFF_DROP };

struct prob {
  struct mlp m;
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver *s;
  struct nsde_tensor *x0, *x, *w, *gx0;
  int64_t B;
};

static struct nsde_func *diffusion(enum diffkind k, enum nsde_dtype dt, double sigma)
{
  struct nsde_func *g = NULL;
  switch (k) {
  case DIFF_NONE: return NULL;
  case DIFF_ADD: ck_assert_int_eq(nsde_func_new_additive(ctx, dt, sigma, &g), NSDE_OK); break;
  case DIFF_MUL: ck_assert_int_eq(nsde_func_new_multiplicative(ctx, dt, sigma, &g), NSDE_OK); break;
  case DIFF_DROP: ck_assert_int_eq(nsde_func_new_dropout(ctx, dt, sigma, &g), NSDE_OK); break;
  }
  return g;
}

static enum nsde_noise noise_of(enum diffkind k)
{
  return k == DIFF_NONE  ? NSDE_NOISE_NONE
         : k == DIFF_ADD ? NSDE_NOISE_ADDITIVE
                         : NSDE_NOISE_DIAGONAL;
}

static enum nsde_calculus calc_of(enum nsde_scheme sc)
{
  return sc == NSDE_SCHEME_HEUN || sc == NSDE_SCHEME_REVERSIBLE_HEUN ? NSDE_CALCULUS_STRATONOVICH
                                                                     : NSDE_CALCULUS_ITO;
}

static void prob_make(struct prob *p, enum nsde_scheme scheme, enum diffkind dk,
                      enum nsde_grad_strategy strat, int64_t steps, int64_t ck_every,
                      const double *save_at, int64_t n_save)
{
  struct nsde_solver_config cfg;
  int64_t shape[2];
  p->B = 2;
  shape[0] = p->B;
  shape[1] = D;
  p->f = mlp_new(&p->m, 3);
  p->g = diffusion(dk, NSDE_DTYPE_FLOAT64, dk == DIFF_DROP ? 0.4 : 0.3);
  ck_assert_int_eq(nsde_sde_new(ctx, p->f, p->g, noise_of(dk), calc_of(scheme), &p->sde), NSDE_OK);
  nsde_solver_config_init(&cfg);
  cfg.scheme = scheme;
  cfg.n_steps = steps;
  cfg.seed = 11;
  cfg.grad = strat;
  cfg.checkpoint_every = ck_every;
  cfg.save_at = save_at;
  cfg.n_save = n_save;
  ck_assert_msg(nsde_solver_new(p->sde, &cfg, 2, shape, &p->s) == NSDE_OK, "%s",
                nsde_context_last_error(ctx));
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &p->x0), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &p->x), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &p->w), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &p->gx0), NSDE_OK);
  for (int i = 0; i < p->B * D; i++) {
    ((double *)nsde_tensor_data(p->x0))[i] = 0.8 + 0.3 * sin(1.7 * i);
    ((double *)nsde_tensor_data(p->w))[i] = cos(0.9 * i + 0.2);
  }
}

static void prob_free(struct prob *p)
{
  nsde_tensor_free(p->x0);
  nsde_tensor_free(p->x);
  nsde_tensor_free(p->w);
  nsde_tensor_free(p->gx0);
  nsde_solver_free(p->s);
  nsde_sde_free(p->sde);
  nsde_func_free(p->g);
  nsde_func_free(p->f);
}

/* L = sum w * x(T) + 0.5 sum saved^2 (when save-at times are given) */
static double loss(struct prob *p, struct nsde_tensor *saved)
{
  double l = 0;
  ck_assert_int_eq(nsde_tensor_copy(p->x, p->x0), NSDE_OK);
  ck_assert_msg(nsde_solve(p->s, p->x, saved) == NSDE_OK, "%s", nsde_context_last_error(ctx));
  for (int i = 0; i < p->B * D; i++)
    l += ((double *)nsde_tensor_data(p->w))[i] * ((double *)nsde_tensor_data(p->x))[i];
  if (saved)
    for (int64_t i = 0; i < nsde_tensor_numel(saved); i++)
      l += 0.5 * pow(((double *)nsde_tensor_data(saved))[i], 2);
  return l;
}

/* ---- closed form: Euler-Maruyama on GBM ------------------------------------------- */

START_TEST(closed_form_gbm)
{
  const double mu = 0.7, sigma = 0.9, x0 = 1.3;
  const int64_t N = 50, B = 4, steps_ck[3] = {0, 1, 7};
  const enum nsde_grad_strategy strats[2] = {NSDE_GRAD_STORE_ALL, NSDE_GRAD_CHECKPOINT};
  for (int si = 0; si < 4; si++) {
    struct nsde_func *f, *g;
    struct nsde_sde *sde;
    struct nsde_solver_config cfg;
    struct nsde_solver *s;
    struct nsde_tensor *x, *w, *gx, *dw;
    int64_t shape[2] = {B, 1}, nb = B;
    double gmu, gsig, prod[4], smu[4], ssig[4], exp_mu = 0, exp_sig = 0;
    ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, mu, 0.0, &f), NSDE_OK);
    ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, sigma, &g), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                     NSDE_OK);
    nsde_solver_config_init(&cfg);
    cfg.n_steps = N;
    cfg.seed = 5;
    cfg.grad = strats[si == 0 ? 0 : 1];
    cfg.checkpoint_every = si == 0 ? 0 : steps_ck[si - 1];
    ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &w), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &gx), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, &nb, &dw), NSDE_OK);
    TRY(nsde_tensor_fill(x, x0));
    for (int b = 0; b < B; b++)
      ((double *)nsde_tensor_data(w))[b] = 1.0 + b;
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
    {
      double gd[2], gs[1];
      ck_assert_int_eq(nsde_backward(s, w, NULL, gx, gd, NELEM(gd), gs, NELEM(gs)), NSDE_OK);
      gmu = gd[0];
      gsig = gs[0];
    }
    for (int b = 0; b < B; b++) {
      prod[b] = 1;
      smu[b] = ssig[b] = 0;
    }
    for (int64_t k = 0; k < N; k++) {
      double h = 1.0 / N;
      ck_assert_int_eq(
          nsde_brownian_increment(nsde_solver_brownian(s), k * h, (k + 1) * h, dw, NULL), NSDE_OK);
      for (int b = 0; b < B; b++) {
        double W = ((double *)nsde_tensor_data(dw))[b], fac = 1 + mu * h + sigma * W;
        prod[b] *= fac;
        smu[b] += h / fac;
        ssig[b] += W / fac;
      }
    }
    for (int b = 0; b < B; b++) {
      double wb = 1.0 + b, xn = x0 * prod[b];
      ck_assert_double_eq_tol(((double *)nsde_tensor_data(x))[b], xn, 1e-12 * fabs(xn));
      ck_assert_msg(
          fabs(((double *)nsde_tensor_data(gx))[b] - wb * prod[b]) <= 1e-10 * fabs(wb * prod[b]),
          "dL/dx0[%d]: %.17g vs %.17g", b, ((double *)nsde_tensor_data(gx))[b], wb * prod[b]);
      exp_mu += wb * xn * smu[b];
      exp_sig += wb * xn * ssig[b];
    }
    ck_assert_msg(fabs(gmu - exp_mu) <= 1e-10 * fabs(exp_mu), "dL/dmu %.17g vs %.17g", gmu, exp_mu);
    ck_assert_msg(fabs(gsig - exp_sig) <= 1e-10 * fabs(exp_sig), "dL/dsigma %.17g vs %.17g", gsig,
                  exp_sig);
    nsde_tensor_free(x);
    nsde_tensor_free(w);
    nsde_tensor_free(gx);
    nsde_tensor_free(dw);
    nsde_solver_free(s);
    nsde_sde_free(sde);
    nsde_func_free(g);
    nsde_func_free(f);
  }
}
END_TEST

/* ---- finite differences, frozen noise: every scheme x diffusion x strategy ------------ */

struct fd_case {
  enum nsde_scheme scheme;
  enum diffkind diff;
  enum nsde_grad_strategy strat;
};

static const struct fd_case fd_cases[] = {
#define ALL3(sc, d)                                                                                \
  {sc, d, NSDE_GRAD_STORE_ALL},                                                                    \
  {                                                                                                \
    sc, d, NSDE_GRAD_CHECKPOINT                                                                    \
  }
    ALL3(NSDE_SCHEME_EULER_MARUYAMA, DIFF_NONE),
    ALL3(NSDE_SCHEME_EULER_MARUYAMA, DIFF_ADD),
    ALL3(NSDE_SCHEME_EULER_MARUYAMA, DIFF_MUL),
    ALL3(NSDE_SCHEME_EULER_MARUYAMA, DIFF_DROP),
    ALL3(NSDE_SCHEME_MILSTEIN, DIFF_ADD),
    ALL3(NSDE_SCHEME_MILSTEIN, DIFF_MUL),
    ALL3(NSDE_SCHEME_HEUN, DIFF_ADD),
    ALL3(NSDE_SCHEME_HEUN, DIFF_MUL),
    ALL3(NSDE_SCHEME_HEUN, DIFF_DROP),
    ALL3(NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_ADD),
    ALL3(NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_MUL),
    ALL3(NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_DROP),
    {NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_ADD, NSDE_GRAD_REVERSIBLE},
    {NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_MUL, NSDE_GRAD_REVERSIBLE},
    {NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_DROP, NSDE_GRAD_REVERSIBLE},
    ALL3(NSDE_SCHEME_SRA1, DIFF_ADD),
    ALL3(NSDE_SCHEME_SRA1, DIFF_NONE),
#undef ALL3
};

START_TEST(finite_differences)
{
  const struct fd_case *c = &fd_cases[_i];
  const double save_at[2] = {0.3, 0.55};
  struct prob p;
  struct nsde_tensor *saved, *gsaved;
  int64_t sshape[1] = {2 * 2 * D};
  double gd[NP], gg[1] = {0}, eps = 1e-6, worst = 0;
  const char *what = "";
  int worst_idx = -1;

  prob_make(&p, c->scheme, c->diff, c->strat, 9, 4, save_at, 2);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, sshape, &saved), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, sshape, &gsaved), NSDE_OK);
  loss(&p, saved);
  TRY(nsde_tensor_copy(gsaved, saved)); /* dL/dsaved = saved */
  ck_assert_msg(nsde_backward(p.s, p.w, gsaved, p.gx0, gd, NELEM(gd), p.g ? gg : NULL,
                              p.g ? 1 : 0) == NSDE_OK,
                "%s", nsde_context_last_error(ctx));
  /* x0 entries */
  for (int i = 0; i < p.B * D; i++) {
    double *xi = &((double *)nsde_tensor_data(p.x0))[i], o = *xi, lp, lm, num, err;
    *xi = o + eps;
    lp = loss(&p, saved);
    *xi = o - eps;
    lm = loss(&p, saved);
    *xi = o;
    num = (lp - lm) / (2 * eps);
    err = fabs(num - ((double *)nsde_tensor_data(p.gx0))[i]) / fmax(1.0, fabs(num));
    if (err > worst) {
      worst = err;
      what = "x0";
      worst_idx = i;
    }
  }
  /* every drift parameter */
  for (int k = 0; k < NP; k++) {
    double o = p.m.p[k], lp, lm, num, err;
    p.m.p[k] = o + eps;
    lp = loss(&p, saved);
    p.m.p[k] = o - eps;
    lm = loss(&p, saved);
    p.m.p[k] = o;
    num = (lp - lm) / (2 * eps);
    err = fabs(num - gd[k]) / fmax(1.0, fabs(num));
    if (err > worst) {
      worst = err;
      what = "drift param";
      worst_idx = k;
    }
  }
  if (p.g) {
    double *sg = nsde_func_params(p.g), o = *sg, lp, lm, num, err;
    *sg = o + eps;
    lp = loss(&p, saved);
    *sg = o - eps;
    lm = loss(&p, saved);
    *sg = o;
    num = (lp - lm) / (2 * eps);
    err = fabs(num - gg[0]) / fmax(1.0, fabs(num));
    if (err > worst) {
      worst = err;
      what = "sigma";
      worst_idx = 0;
    }
  }
  printf("# scheme %d diffusion %d strategy %d: worst relative error %.2g (%s %d)\n", c->scheme,
         c->diff, c->strat, worst, what, worst_idx);
  ck_assert_msg(worst < 2e-6, "scheme %d diffusion %d strategy %d: %s[%d] error %g", c->scheme,
                c->diff, c->strat, what, worst_idx, worst);
  nsde_tensor_free(saved);
  nsde_tensor_free(gsaved);
  prob_free(&p);
}
END_TEST

/* ---- strategies agree --------------------------------------------------------------- */

static void grads_builtin(enum nsde_dtype dt, enum nsde_scheme scheme, enum diffkind dk,
                          enum nsde_grad_strategy strat, int64_t ck, int64_t N, int64_t bsteps,
                          double *out_x, double *out_p)
{
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver_config cfg;
  struct nsde_solver *s;
  struct nsde_tensor *x, *w, *gx;
  const int64_t B = 3, Dd = 700; /* above the threading threshold in total */
  int64_t shape[2] = {B, Dd};
  double gd[2] = {0, 0}, gs[1] = {0};
  float gdf[2] = {0, 0}, gsf[1] = {0};

  ck_assert_int_eq(nsde_func_new_linear(ctx, dt, -0.4, 0.2, &f), NSDE_OK);
  g = diffusion(dk, dt, 0.5);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, noise_of(dk), calc_of(scheme), &sde), NSDE_OK);
  nsde_solver_config_init(&cfg);
  cfg.scheme = scheme;
  cfg.n_steps = N;
  cfg.seed = 21;
  cfg.grad = strat;
  cfg.checkpoint_every = ck;
  cfg.brownian_steps = bsteps;
  ck_assert_msg(nsde_solver_new(sde, &cfg, 2, shape, &s) == NSDE_OK, "%s",
                nsde_context_last_error(ctx));
  ck_assert_int_eq(nsde_tensor_new(ctx, dt, 2, shape, &x), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, dt, 2, shape, &w), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, dt, 2, shape, &gx), NSDE_OK);
  for (int64_t i = 0; i < B * Dd; i++) {
    double xv = 1.0 + 0.5 * sin((double)i), wv = cos(0.3 * (double)i);
    if (dt == NSDE_DTYPE_FLOAT64) {
      ((double *)nsde_tensor_data(x))[i] = xv;
      ((double *)nsde_tensor_data(w))[i] = wv;
    } else {
      ((float *)nsde_tensor_data(x))[i] = (float)xv;
      ((float *)nsde_tensor_data(w))[i] = (float)wv;
    }
  }
  ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
  ck_assert_msg(nsde_backward(s, w, NULL, gx, dt == NSDE_DTYPE_FLOAT64 ? (void *)gd : (void *)gdf,
                              2, dt == NSDE_DTYPE_FLOAT64 ? (void *)gs : (void *)gsf,
                              g ? 1 : 0) == NSDE_OK,
                "%s", nsde_context_last_error(ctx));
  for (int64_t i = 0; i < B * Dd; i++)
    out_x[i] = dt == NSDE_DTYPE_FLOAT64 ? ((double *)nsde_tensor_data(gx))[i]
                                        : ((float *)nsde_tensor_data(gx))[i];
  out_p[0] = dt == NSDE_DTYPE_FLOAT64 ? gd[0] : gdf[0];
  out_p[1] = dt == NSDE_DTYPE_FLOAT64 ? gd[1] : gdf[1];
  out_p[2] = dt == NSDE_DTYPE_FLOAT64 ? gs[0] : gsf[0];
  nsde_tensor_free(x);
  nsde_tensor_free(w);
  nsde_tensor_free(gx);
  nsde_solver_free(s);
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
}

static double max_rel(const double *a, const double *b, int64_t n)
{
  double m = 0, scale = 0;
  for (int64_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(b[i]));
  for (int64_t i = 0; i < n; i++)
    m = fmax(m, fabs(a[i] - b[i]) / fmax(scale, 1e-300));
  return m;
}

START_TEST(strategies_agree)
{
  const int64_t n = 3 * 700, N = 40;
  double *ref = malloc(sizeof(double) * n), *got = malloc(sizeof(double) * n), rp[3], gp[3];
  const struct {
    enum nsde_scheme sc;
    enum diffkind dk;
  } cases[] = {{NSDE_SCHEME_EULER_MARUYAMA, DIFF_MUL},
               {NSDE_SCHEME_MILSTEIN, DIFF_MUL},
               {NSDE_SCHEME_HEUN, DIFF_DROP},
               {NSDE_SCHEME_SRA1, DIFF_ADD},
               {NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_MUL}};
  for (int d = 0; d < 2; d++) {
    enum nsde_dtype dt = d ? NSDE_DTYPE_FLOAT32 : NSDE_DTYPE_FLOAT64;
    double tol = d ? 1e-6 : 1e-12;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
      const int64_t cks[3] = {1, 6, 0};
      grads_builtin(dt, cases[c].sc, cases[c].dk, NSDE_GRAD_STORE_ALL, 0, N, 0, ref, rp);
      for (int k = 0; k < 3; k++) {
        grads_builtin(dt, cases[c].sc, cases[c].dk, NSDE_GRAD_CHECKPOINT, cks[k], N, 0, got, gp);
        ck_assert_msg(max_rel(got, ref, n) <= tol && max_rel(gp, rp, 3) <= tol,
                      "checkpoint %lld, scheme %d dtype %d: %g %g", (long long)cks[k], cases[c].sc,
                      dt, max_rel(got, ref, n), max_rel(gp, rp, 3));
      }
      if (cases[c].sc == NSDE_SCHEME_REVERSIBLE_HEUN) {
        grads_builtin(dt, cases[c].sc, cases[c].dk, NSDE_GRAD_REVERSIBLE, 0, N, 0, got, gp);
        printf("# reversible vs store-all (%s): %.2g (state) %.2g (params)\n",
               d ? "float32" : "float64", max_rel(got, ref, n), max_rel(gp, rp, 3));
        ck_assert_msg(max_rel(got, ref, n) <= tol && max_rel(gp, rp, 3) <= tol,
                      "reversible, dtype %d: %g %g", dt, max_rel(got, ref, n), max_rel(gp, rp, 3));
      }
    }
  }
  free(ref);
  free(got);
}
END_TEST

/* The continuous adjoint approaches the discrete (store-all) gradient as dt -> 0,
 * on one Brownian path shared by every step count. */
START_TEST(adjoint_converges)
{
  const int64_t n = 3 * 700, Ns[4] = {16, 64, 256, 1024};
  double *ref = malloc(sizeof(double) * n), *got = malloc(sizeof(double) * n), rp[3], gp[3];
  const enum diffkind kinds[3] = {DIFF_NONE, DIFF_ADD, DIFF_MUL};
  for (int k = 0; k < 3; k++) {
    double ds[4], dp[4], hs[4];
    for (int j = 0; j < 4; j++) {
      grads_builtin(NSDE_DTYPE_FLOAT64, NSDE_SCHEME_EULER_MARUYAMA, kinds[k], NSDE_GRAD_STORE_ALL,
                    0, Ns[j], 4096, ref, rp);
      grads_builtin(NSDE_DTYPE_FLOAT64, NSDE_SCHEME_EULER_MARUYAMA, kinds[k], NSDE_GRAD_ADJOINT, 0,
                    Ns[j], 4096, got, gp);
      ds[j] = max_rel(got, ref, n);
      dp[j] = max_rel(gp, rp, kinds[k] == DIFF_NONE ? 2 : 3);
      hs[j] = 1.0 / (double)Ns[j];
    }
    printf("# adjoint vs store-all, noise %d, N = 16, 64, 256, 1024: dL/dx0 %.3g %.3g %.3g %.3g "
           "(rate %.2f), parameters %.3g %.3g %.3g %.3g\n",
           k, ds[0], ds[1], ds[2], ds[3], loglog_slope(hs, ds, 4), dp[0], dp[1], dp[2], dp[3]);
    /* the state gradient converges at least at the strong rate 1/2 (factor 8 over 64x) */
    ck_assert_msg(ds[3] < ds[0] / 4, "noise %d: dL/dx0 %g -> %g", k, ds[0], ds[3]);
    ck_assert_msg(dp[3] < 0.05, "noise %d: parameter gradients differ by %g at N = 1024", k, dp[3]);
  }
  free(ref);
  free(got);
}
END_TEST

/* ---- memory: the query, and the measured peak in a child process ---------------------- */

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define NSDE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NSDE_UNDER_ASAN 1
#endif
#endif

static void mem_config(struct nsde_solver_config *cfg, enum nsde_grad_strategy strat, int64_t N)
{
  nsde_solver_config_init(cfg);
  cfg->scheme =
      strat == NSDE_GRAD_REVERSIBLE ? NSDE_SCHEME_REVERSIBLE_HEUN : NSDE_SCHEME_EULER_MARUYAMA;
  cfg->n_steps = N;
  cfg->grad = strat;
}

/* Peak RSS growth (bytes) of make + solve + backward, measured in a child. */
static long peak_growth(enum nsde_grad_strategy strat, int64_t N, int64_t B, int64_t Dd)
{
  int fd[2];
  pid_t pid;
  long result = -1;
  ck_assert_int_eq(pipe(fd), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct nsde_context *c;
    struct nsde_func *f, *g;
    struct nsde_sde *sde;
    struct nsde_solver_config cfg;
    struct nsde_solver *s;
    struct nsde_tensor *x, *w, *gx;
    struct rusage ru0, ru1;
    int64_t shape[2] = {B, Dd};
    long growth;
    if (nsde_context_new(&c))
      _exit(3);
    if (nsde_context_set_threads(c, 1))
      _exit(3);
    if (nsde_func_new_linear(c, NSDE_DTYPE_FLOAT64, -0.3, 0.0, &f))
      _exit(3);
    if (nsde_func_new_multiplicative(c, NSDE_DTYPE_FLOAT64, 0.4, &g))
      _exit(3);
    if (nsde_sde_new(c, f, g, NSDE_NOISE_DIAGONAL,
                     strat == NSDE_GRAD_REVERSIBLE ? NSDE_CALCULUS_STRATONOVICH : NSDE_CALCULUS_ITO,
                     &sde))
      _exit(3);
    if (nsde_tensor_new(c, NSDE_DTYPE_FLOAT64, 2, shape, &x))
      _exit(3);
    if (nsde_tensor_new(c, NSDE_DTYPE_FLOAT64, 2, shape, &w))
      _exit(3);
    if (nsde_tensor_new(c, NSDE_DTYPE_FLOAT64, 2, shape, &gx))
      _exit(3);
    if (nsde_tensor_fill(x, 1.0))
      _exit(3);
    if (nsde_tensor_fill(w, 1.0))
      _exit(3);
    if (nsde_tensor_fill(gx, 0.0))
      _exit(3);
    mem_config(&cfg, strat, N);
    getrusage(RUSAGE_SELF, &ru0);
    if (nsde_solver_new(sde, &cfg, 2, shape, &s) || nsde_solve(s, x, NULL) ||
        nsde_backward(s, w, NULL, gx, NULL, 0, NULL, 0))
      _exit(3);
    getrusage(RUSAGE_SELF, &ru1);
    growth = (ru1.ru_maxrss - ru0.ru_maxrss) * 1024L;
    if (write(fd[1], &growth, sizeof(growth)) != sizeof(growth))
      _exit(4);
    _exit(0);
  }
  close(fd[1]);
  if (read(fd[0], &result, sizeof(result)) != sizeof(result))
    result = -1;
  close(fd[0]);
  waitpid(pid, NULL, 0);
  return result;
}

START_TEST(memory_follows_query)
{
  const int64_t Ns[3] = {10, 100, 1000}, B = 4, Dd = 2500; /* 80 kB per state */
  const enum nsde_grad_strategy strats[4] = {NSDE_GRAD_STORE_ALL, NSDE_GRAD_CHECKPOINT,
                                             NSDE_GRAD_REVERSIBLE, NSDE_GRAD_ADJOINT};
  const char *names[4] = {"store-all", "checkpoint", "reversible", "adjoint"};
  size_t q[4][3];
  struct nsde_func *f, *g, *gs;
  struct nsde_sde *ito, *strat_sde;
  int64_t shape[2] = {B, Dd};

  ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, -0.3, 0.0, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.4, &g), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.4, &gs), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &ito), NSDE_OK);
  ck_assert_int_eq(
      nsde_sde_new(ctx, f, gs, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_STRATONOVICH, &strat_sde),
      NSDE_OK);
  for (int s = 0; s < 4; s++)
    for (int j = 0; j < 3; j++) {
      struct nsde_solver_config cfg;
      long peak;
      mem_config(&cfg, strats[s], Ns[j]);
      ck_assert_int_eq(
          nsde_solver_workspace_bytes(strats[s] == NSDE_GRAD_REVERSIBLE ? strat_sde : ito, &cfg, 2,
                                      shape, &q[s][j]),
          NSDE_OK);
      peak = peak_growth(strats[s], Ns[j], B, Dd);
      printf("# strategy=%s N=%lld query_bytes=%zu measured_peak_growth=%ld\n", names[s],
             (long long)Ns[j], q[s][j], peak);
      ck_assert_int_ge(peak, 0);
#ifndef NSDE_UNDER_ASAN
      /* the measured peak stays within the query (plus allocator slack) */
      ck_assert_msg((double)peak <= 1.05 * (double)q[s][j] + 2e6, "%s N=%lld: peak %ld > query %zu",
                    names[s], (long long)Ns[j], peak, q[s][j]);
#endif
    }
  /* store-all grows linearly; checkpointing sub-linearly; the O(1) ones stay flat */
  ck_assert(q[0][2] > 50 * q[0][0] / 10);
  ck_assert_msg(q[1][2] < q[1][1] * 5 && q[1][2] < q[0][2] / 5, "checkpoint %zu %zu", q[1][1],
                q[1][2]);
  for (int s = 2; s < 4; s++)
    ck_assert_msg(q[s][2] < q[s][0] + 64 * 1024, "%s: %zu vs %zu", names[s], q[s][2], q[s][0]);
  nsde_sde_free(ito);
  nsde_sde_free(strat_sde);
  nsde_func_free(f);
  nsde_func_free(g);
  nsde_func_free(gs);
}
END_TEST

/* STORE_ALL and CHECKPOINT keep each step's Brownian increments with its
 * record, so nsde_backward() draws none for the steps it has records of; the
 * schemes and strategies without such records draw every step again. */
START_TEST(increments_kept_with_records)
{
  const int64_t N = 10, shape[2] = {4, 5};
  const struct {
    enum nsde_scheme sc;
    enum nsde_grad_strategy g;
    int64_t ck, after;
  } cases[] = {
      {NSDE_SCHEME_EULER_MARUYAMA, NSDE_GRAD_STORE_ALL, 0, N},
      {NSDE_SCHEME_MILSTEIN, NSDE_GRAD_STORE_ALL, 0, N},
      {NSDE_SCHEME_HEUN, NSDE_GRAD_STORE_ALL, 0, N},
      {NSDE_SCHEME_EULER_MARUYAMA, NSDE_GRAD_CHECKPOINT, 3, 2 * N}, /* the replays draw */
      {NSDE_SCHEME_EULER_MARUYAMA, NSDE_GRAD_ADJOINT, 0, 2 * N},
      {NSDE_SCHEME_REVERSIBLE_HEUN, NSDE_GRAD_REVERSIBLE, 0,
       2 * N},                                            /* reconstruction reuses them */
      {NSDE_SCHEME_SRA1, NSDE_GRAD_STORE_ALL, 0, 2 * N}}; /* two arrays a step: drawn again */
  struct nsde_func *f, *g, *ga;
  struct nsde_sde *ito, *strat, *add;
  struct nsde_tensor *x, *gx, *g0;

  ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, -0.3, 0.1, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.4, &g), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.4, &ga), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &ito), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_STRATONOVICH, &strat),
                   NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, ga, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &add), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &gx), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &g0), NSDE_OK);
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    struct nsde_solver_config cfg;
    struct nsde_solver *s;
    struct nsde_solver_stats st = {.size = sizeof(st)};
    struct nsde_sde *sde =
        cases[c].sc == NSDE_SCHEME_SRA1                                                 ? add
        : cases[c].sc == NSDE_SCHEME_HEUN || cases[c].sc == NSDE_SCHEME_REVERSIBLE_HEUN ? strat
                                                                                        : ito;
    nsde_solver_config_init(&cfg);
    cfg.scheme = cases[c].sc;
    cfg.n_steps = N;
    cfg.grad = cases[c].g;
    cfg.checkpoint_every = cases[c].ck;
    ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_OK);
    for (int64_t i = 0; i < 20; i++)
      ((double *)nsde_tensor_data(x))[i] = 1.0 + 0.05 * (double)i;
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
    ck_assert_int_eq(nsde_solver_get_stats(s, &st), NSDE_OK);
    ck_assert_int_eq(st.brownian_draws, N);
    for (int64_t i = 0; i < 20; i++)
      ((double *)nsde_tensor_data(gx))[i] = 1.0;
    ck_assert_int_eq(nsde_backward(s, gx, NULL, g0, NULL, 0, NULL, 0), NSDE_OK);
    ck_assert_int_eq(nsde_solver_get_stats(s, &st), NSDE_OK);
    ck_assert_msg(st.brownian_draws == cases[c].after, "case %zu: %lld draws, expected %lld", c,
                  (long long)st.brownian_draws, (long long)cases[c].after);
    nsde_solver_free(s);
  }
  nsde_tensor_free(x);
  nsde_tensor_free(gx);
  nsde_tensor_free(g0);
  nsde_sde_free(ito);
  nsde_sde_free(strat);
  nsde_sde_free(add);
  nsde_func_free(f);
  nsde_func_free(g);
  nsde_func_free(ga);
}
END_TEST

/* A checkpointed Euler-Maruyama or Milstein replay records its segment's
 * last step without taking it (its output starts the next segment): ten
 * steps in segments of 4, 4 and 2 evaluate the drift 10 times in the solve
 * and 3 + 3 + 1 in the replays (the backward steps evaluate what store-all's
 * do); Heun, whose record holds its predictor, replays every step (2
 * evaluations each). The gradients are store-all's to the bit. */
struct counted {
  int64_t evals;
};

static int counted_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x;
  double *o = out;
  (void)t;
  ((struct counted *)user)->evals++;
  for (int64_t i = 0; i < batch * dim; i++)
    o[i] = -0.3 * xd[i] + 0.1 * sin(xd[i]);
  return 0;
}

static int counted_vjp(void *user, double t, int64_t batch, int64_t dim, const void *x,
                       const void *v, void *grad_x, void *grad_params)
{
  const double *xd = x, *vd = v;
  double *gx = grad_x;
  (void)user, (void)t, (void)grad_params;
  for (int64_t i = 0; i < batch * dim; i++)
    gx[i] = vd[i] * (-0.3 + 0.1 * cos(xd[i]));
  return 0;
}

START_TEST(checkpoint_replays_stop_short)
{
  const int64_t N = 10, shape[2] = {4, 5};
  const struct {
    enum nsde_scheme sc;
    enum nsde_calculus cal;
    int64_t per_step, replayed;
  } cases[] = {{NSDE_SCHEME_EULER_MARUYAMA, NSDE_CALCULUS_ITO, 1, 7},
               {NSDE_SCHEME_MILSTEIN, NSDE_CALCULUS_ITO, 1, 7},
               {NSDE_SCHEME_HEUN, NSDE_CALCULUS_STRATONOVICH, 2, 20}};
  struct nsde_func_ops ops = {.size = sizeof(ops), .eval = counted_eval, .vjp = counted_vjp};
  struct counted u = {0};
  struct nsde_func *f, *g;
  struct nsde_tensor *x, *gx, *g0[2];

  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &u, 0, NULL, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.4, &g), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &gx), NSDE_OK);
  for (int k = 0; k < 2; k++)
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &g0[k]), NSDE_OK);
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    struct nsde_sde *sde;
    int64_t evals[2];
    ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, cases[c].cal, &sde), NSDE_OK);
    for (int k = 0; k < 2; k++) { /* store-all, then checkpoints every 4 steps */
      struct nsde_solver_config cfg;
      struct nsde_solver *s;
      nsde_solver_config_init(&cfg);
      cfg.scheme = cases[c].sc;
      cfg.n_steps = N;
      cfg.seed = 7;
      cfg.grad = k ? NSDE_GRAD_CHECKPOINT : NSDE_GRAD_STORE_ALL;
      cfg.checkpoint_every = k ? 4 : 0;
      ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_OK);
      for (int64_t i = 0; i < 20; i++) {
        ((double *)nsde_tensor_data(x))[i] = 1.0 + 0.05 * (double)i;
        ((double *)nsde_tensor_data(gx))[i] = 1.0 - 0.03 * (double)i;
      }
      u.evals = 0;
      ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
      ck_assert_int_eq(u.evals, cases[c].per_step * N);
      ck_assert_int_eq(nsde_backward(s, gx, NULL, g0[k], NULL, 0, NULL, 0), NSDE_OK);
      evals[k] = u.evals;
      nsde_solver_free(s);
    }
    ck_assert_msg(evals[1] - evals[0] == cases[c].replayed, "case %zu: %lld replayed evaluations",
                  c, (long long)(evals[1] - evals[0]));
    ck_assert_mem_eq(nsde_tensor_data(g0[0]), nsde_tensor_data(g0[1]), 20 * sizeof(double));
    nsde_sde_free(sde);
  }
  nsde_tensor_free(x);
  nsde_tensor_free(gx);
  for (int k = 0; k < 2; k++)
    nsde_tensor_free(g0[k]);
  nsde_func_free(f);
  nsde_func_free(g);
}
END_TEST

/* ---- the vjp checker ----------------------------------------------------------------------- */

START_TEST(vjp_checker)
{
  struct mlp m;
  struct nsde_func *f = mlp_new(&m, 9), *g;
  struct nsde_tensor *x;
  struct nsde_vjp_report r;
  int64_t shape[2] = {5, D};
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x), NSDE_OK);
  for (int i = 0; i < 5 * D; i++)
    ((double *)nsde_tensor_data(x))[i] = sin(i + 0.5);
  memset(&r, 0, sizeof(r));
  r.size = sizeof(r);
  ck_assert_int_eq(nsde_func_check_vjp(f, 0.3, x, 1, 0, &r), NSDE_OK);
  ck_assert_int_eq(r.checked, 5 * D + NP);
  ck_assert_msg(r.worst_rel_err < 1e-7, "correct vjp reported %g", r.worst_rel_err);
  m.bad_grad = 1;
  ck_assert_int_eq(nsde_func_check_vjp(f, 0.3, x, 1, 0, &r), NSDE_ERR_CHECK_FAILED);
  ck_assert_msg(r.worst_rel_err > 1e-3, "corrupted vjp reported only %g", r.worst_rel_err);
  ck_assert_int_eq(r.worst_is_param, 1);
  ck_assert_int_eq(r.worst_index, 5);
  m.bad_grad = 0;
  /* built-ins check out too; dropout refers to its drift */
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.7, &g), NSDE_OK);
  ck_assert_int_eq(nsde_func_check_vjp(g, 0.0, x, 2, 0, &r), NSDE_OK);
  ck_assert(r.worst_rel_err < 1e-8);
  nsde_func_free(g);
  ck_assert_int_eq(nsde_func_new_dropout(ctx, NSDE_DTYPE_FLOAT64, 0.7, &g), NSDE_OK);
  ck_assert_int_eq(nsde_func_check_vjp(g, 0.0, x, 2, 0, &r), NSDE_ERR_UNSUPPORTED);
  nsde_func_free(g);
  r.size = 3;
  ck_assert_int_eq(nsde_func_check_vjp(f, 0.0, x, 2, 0, &r), NSDE_ERR_INVALID);
  {
    /* a report from a newer header: filled up to the members this library
     * knows, the rest left alone, the size field as the caller set it */
    struct {
      struct nsde_vjp_report r;
      double newer_member;
    } big;
    memset(&big, 0, sizeof(big));
    big.r.size = sizeof(big);
    big.newer_member = 42.0;
    ck_assert_int_eq(nsde_func_check_vjp(f, 0.0, x, 2, 0, &big.r), NSDE_OK);
    ck_assert_int_eq(big.r.checked, 5 * D + NP);
    ck_assert(big.newer_member == 42.0);
    ck_assert_uint_eq(big.r.size, sizeof(big));
  }
  r.size = sizeof(r);
  ck_assert_int_eq(nsde_func_check_vjp(f, 0.0, x, 2, -1.0, &r), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_func_check_vjp(NULL, 0.0, x, 2, 0, &r), NSDE_ERR_NULL);
  nsde_tensor_free(x);
  nsde_func_free(f);
}
END_TEST

/* The reproducer, f(t, x) = a sin(x), with callbacks that break the
 * contract in each way a user's might: every one must get a verdict. */
struct asin_f {
  double a;
  int mode; /* 0 right, 1 sign-flipped vjp, 2 overwrites grad_params, 3 adds to grad_x,
               4 wrong diag_deriv, 5 wrong diag_deriv_vjp, 6 leaves grad_x[0] unwritten */
};

static int asin_eval(void *u, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const struct asin_f *p = u;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)out)[i] = p->a * sin(((const double *)x)[i]);
  return 0;
}

static int asin_vjp(void *u, double t, int64_t batch, int64_t dim, const void *x, const void *v,
                    void *grad_x, void *grad_params)
{
  const struct asin_f *p = u;
  const double *xd = x, *vd = v;
  double *gx = grad_x, *gp = grad_params, s = 0;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++) {
    double g = (p->mode == 1 ? -1 : 1) * vd[i] * p->a * cos(xd[i]);
    if (p->mode == 6 && i == 0)
      continue;
    gx[i] = p->mode == 3 ? gx[i] + g : g;
    s += vd[i] * sin(xd[i]);
  }
  if (gp)
    gp[0] = p->mode == 2 ? s : gp[0] + s;
  return 0;
}

static int asin_diag(void *u, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const struct asin_f *p = u;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)out)[i] =
        p->a * (p->mode == 4 ? sin(((const double *)x)[i]) : cos(((const double *)x)[i]));
  return 0;
}

static int asin_diag_vjp(void *u, double t, int64_t batch, int64_t dim, const void *x,
                         const void *v, void *grad_x, void *grad_params)
{
  const struct asin_f *p = u;
  const double *xd = x, *vd = v;
  double *gx = grad_x, *gp = grad_params, s = 0;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++) { /* d(a cos x)/dx = -a sin x, d/da = cos x */
    gx[i] = (p->mode == 5 ? 1 : -1) * vd[i] * p->a * sin(xd[i]);
    s += vd[i] * cos(xd[i]);
  }
  if (gp)
    gp[0] += s;
  return 0;
}

START_TEST(vjp_checker_verdicts)
{
  struct asin_f u = {0};
  struct nsde_func_ops ops = {0};
  struct nsde_func *f;
  struct nsde_tensor *x, *x32;
  struct nsde_vjp_report r;
  int64_t shape[2] = {3, 4};
  ops.size = sizeof(ops);
  ops.eval = asin_eval;
  ops.vjp = asin_vjp;
  ops.diag_deriv = asin_diag;
  ops.diag_deriv_vjp = asin_diag_vjp;
  u.a = 1.7;
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &u, 1, &u.a, &f), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &x32), NSDE_OK);
  for (int i = 0; i < 12; i++)
    ((double *)nsde_tensor_data(x))[i] = 0.3 * i - 1.4;
  memset(&r, 0, sizeof(r));
  r.size = sizeof(r);
  for (int mode = 0; mode <= 6; mode++) {
    enum nsde_status want[7][3] = {
        /* vjp, diag, diag vjp */
        {NSDE_OK, NSDE_OK, NSDE_OK},
        {NSDE_ERR_CHECK_FAILED, NSDE_OK, NSDE_OK},
        {NSDE_ERR_CHECK_FAILED, NSDE_OK, NSDE_OK},
        {NSDE_ERR_CHECK_FAILED, NSDE_OK, NSDE_OK},
        {NSDE_OK, NSDE_ERR_CHECK_FAILED, NSDE_ERR_CHECK_FAILED}, /* diag_vjp is of the true diag */
        {NSDE_OK, NSDE_OK, NSDE_ERR_CHECK_FAILED},
        {NSDE_ERR_CHECK_FAILED, NSDE_OK, NSDE_OK}};
    u.mode = mode;
    ck_assert_int_eq(nsde_func_check_vjp(f, 0.0, x, 5, 0, &r), want[mode][0]);
    if (want[mode][0] == NSDE_OK)
      ck_assert_msg(r.worst_rel_err < 1e-7, "mode %d: %g", mode, r.worst_rel_err);
    if (mode == 1)
      ck_assert(r.worst_rel_err > 1.0); /* a sign flip: relative error about 2 */
    if (mode == 2) {
      ck_assert(strstr(nsde_context_last_error(ctx), "accumulate") != NULL);
      ck_assert_int_eq(r.worst_is_param, 1);
    }
    if (mode == 3 || mode == 6)
      ck_assert(strstr(nsde_context_last_error(ctx), "overwrite") != NULL);
    ck_assert_int_eq(nsde_func_check_diag(f, 0.0, x, 0, &r), want[mode][1]);
    if (want[mode][1] == NSDE_OK)
      ck_assert_msg(r.worst_rel_err < 1e-7 && r.checked == 12, "mode %d: %g", mode,
                    r.worst_rel_err);
    ck_assert_int_eq(nsde_func_check_diag_vjp(f, 0.0, x, 5, 0, &r), want[mode][2]);
    if (want[mode][2] == NSDE_OK)
      ck_assert_msg(r.worst_rel_err < 1e-7 && r.checked == 13, "mode %d: %g", mode,
                    r.worst_rel_err);
  }
  /* the dtype of x must be the func's: the solver's status for it */
  ck_assert_int_eq(nsde_func_check_vjp(f, 0.0, x32, 5, 0, &r), NSDE_ERR_DTYPE);
  ck_assert_int_eq(nsde_func_check_diag(f, 0.0, x32, 0, &r), NSDE_ERR_DTYPE);
  nsde_func_free(f);
  /* missing callbacks are named */
  ops.diag_deriv_vjp = NULL;
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &u, 1, &u.a, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_check_diag_vjp(f, 0.0, x, 5, 0, &r), NSDE_ERR_MISSING_OP);
  nsde_func_free(f);
  ops.diag_deriv = NULL;
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &u, 1, &u.a, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_check_diag(f, 0.0, x, 0, &r), NSDE_ERR_MISSING_OP);
  nsde_func_free(f);
  /* the built-ins pass their own checks */
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.7, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_check_diag(f, 0.0, x, 0, &r), NSDE_OK);
  ck_assert_int_eq(nsde_func_check_diag_vjp(f, 0.0, x, 5, 0, &r), NSDE_OK);
  nsde_func_free(f);
  nsde_tensor_free(x);
  nsde_tensor_free(x32);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------- */

static int inf_vjp(void *user, double t, int64_t batch, int64_t dim, const void *x, const void *v,
                   void *grad_x, void *grad_params)
{
  (void)user;
  (void)x;
  (void)v;
  (void)grad_params;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)grad_x)[i] = t > 0.5 ? INFINITY : 1.0;
  return 0;
}

static int lin_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  (void)user;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)out)[i] = -((const double *)x)[i];
  return 0;
}

START_TEST(errors)
{
  struct prob p;
  struct nsde_solver_config cfg;
  struct nsde_solver *s;
  int64_t shape[2] = {2, D}, bad_shape[2] = {3, D};
  struct nsde_tensor *wrong, *w32;
  double gd[NP];

  prob_make(&p, NSDE_SCHEME_EULER_MARUYAMA, DIFF_MUL, NSDE_GRAD_STORE_ALL, 10, 0, NULL, 0);
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, NULL, 0, NULL, 0),
                   NSDE_ERR_STATE); /* no solve */
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "no completed"));
  loss(&p, NULL);
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd), NULL, 0), NSDE_OK);
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd), NULL, 0),
                   NSDE_OK); /* repeatable */
  /* a parameter-gradient count that is not the drift's parameter count */
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd) - 1, NULL, 0),
                   NSDE_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "grad_drift_params holds"));
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, NULL, 3, NULL, 0), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd), NULL, 1), NSDE_ERR_SHAPE);
  p.m.p[0] += 0.1; /* parameters changed since the solve */
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd), NULL, 0), NSDE_ERR_STATE);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "changed"));
  p.m.p[0] -= 0.1;
  loss(&p, NULL);
  ck_assert_int_eq(nsde_solver_reset(p.s), NSDE_OK); /* the tape no longer matches */
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd), NULL, 0), NSDE_ERR_STATE);
  loss(&p, NULL);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, bad_shape, &wrong), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &w32), NSDE_OK);
  ck_assert_int_eq(nsde_backward(p.s, wrong, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, wrong, NULL, 0, NULL, 0), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_backward(p.s, w32, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_DTYPE);
  ck_assert_int_eq(nsde_backward(p.s, NULL, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_backward(p.s, p.w, wrong, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_backward(NULL, p.w, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_NULL);
  /* a failing vjp callback names the step */
  p.m.fail_vjp = 1;
  ck_assert_int_eq(nsde_backward(p.s, p.w, NULL, p.gx0, gd, NELEM(gd), NULL, 0), NSDE_ERR_CALLBACK);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "step 9"));
  p.m.fail_vjp = 0;

  /* options refused when the solver is made */
  nsde_solver_config_init(&cfg);
  cfg.grad = NSDE_GRAD_REVERSIBLE; /* with Euler-Maruyama */
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  cfg.grad = (enum nsde_grad_strategy)17;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_INVALID);
  cfg.grad = NSDE_GRAD_CHECKPOINT;
  cfg.checkpoint_every = -2;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_INVALID);
  cfg.checkpoint_every = 0;
  cfg.grad_budget_bytes = 1000;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_NOMEM);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "budget"));
  cfg.grad_budget_bytes = 0;
  cfg.grad = NSDE_GRAD_ADJOINT;
  cfg.scheme = NSDE_SCHEME_MILSTEIN;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  nsde_solver_config_init(&cfg); /* no gradient strategy: backward refuses */
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_OK);
  TRY(nsde_tensor_copy(p.x, p.x0));
  ck_assert_int_eq(nsde_solve(s, p.x, NULL), NSDE_OK);
  ck_assert_int_eq(nsde_backward(s, p.w, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_UNSUPPORTED);
  nsde_solver_free(s);
  {
    /* a drift without vjp: refused when made with a strategy */
    struct nsde_func_ops ops = {sizeof(ops), lin_eval, NULL, NULL, NULL};
    struct nsde_func *f;
    struct nsde_sde *sde;
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &f), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, NULL, NSDE_NOISE_NONE, NSDE_CALCULUS_ITO, &sde), NSDE_OK);
    cfg.grad = NSDE_GRAD_STORE_ALL;
    ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_ERR_MISSING_OP);
    /* a vjp that produces infinities: the step is named */
    nsde_sde_free(sde);
    nsde_func_free(f);
    ops.vjp = inf_vjp;
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &f), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, NULL, NSDE_NOISE_NONE, NSDE_CALCULUS_ITO, &sde), NSDE_OK);
    ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_OK);
    TRY(nsde_tensor_copy(p.x, p.x0));
    ck_assert_int_eq(nsde_solve(s, p.x, NULL), NSDE_OK);
    ck_assert_int_eq(nsde_backward(s, p.w, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_NONFINITE);
    ck_assert_msg(strstr(nsde_context_last_error(ctx), "step 9") != NULL, "%s",
                  nsde_context_last_error(ctx));
    /* a NaN in grad_final is the caller's input, not a failure at some step */
    ((double *)nsde_tensor_data(p.w))[3] = NAN;
    ck_assert_int_eq(nsde_backward(s, p.w, NULL, p.gx0, NULL, 0, NULL, 0), NSDE_ERR_NONFINITE);
    ck_assert_msg(
        strstr(nsde_context_last_error(ctx), "nsde_backward: 1 non-finite values in grad_final") &&
            !strstr(nsde_context_last_error(ctx), "step"),
        "%s", nsde_context_last_error(ctx));
    ((double *)nsde_tensor_data(p.w))[3] = 1.0;
    nsde_solver_free(s);
    nsde_sde_free(sde);
    nsde_func_free(f);
  }
  {
    /* reversible gradients consume the solve */
    struct prob r;
    prob_make(&r, NSDE_SCHEME_REVERSIBLE_HEUN, DIFF_MUL, NSDE_GRAD_REVERSIBLE, 10, 0, NULL, 0);
    loss(&r, NULL);
    ck_assert_int_eq(nsde_backward(r.s, r.w, NULL, r.gx0, NULL, 0, NULL, 0), NSDE_OK);
    ck_assert_int_eq(nsde_backward(r.s, r.w, NULL, r.gx0, NULL, 0, NULL, 0), NSDE_ERR_STATE);
    prob_free(&r);
  }
  nsde_tensor_free(wrong);
  nsde_tensor_free(w32);
  prob_free(&p);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("grad");
  TCase *tc = tcase_create("grad");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, closed_form_gbm);
  tcase_add_loop_test(tc, finite_differences, 0, (int)(sizeof(fd_cases) / sizeof(fd_cases[0])));
  tcase_add_test(tc, strategies_agree);
  tcase_add_test(tc, adjoint_converges);
  tcase_add_test(tc, memory_follows_query);
  tcase_add_test(tc, increments_kept_with_records);
  tcase_add_test(tc, checkpoint_replays_stop_short);
  tcase_add_test(tc, vjp_checker);
  tcase_add_test(tc, vjp_checker_verdicts);
  tcase_add_test(tc, errors);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
