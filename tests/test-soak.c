/*
 * Soak: solve and backward on random problems - shapes, noise types,
 * schemes, gradient strategies, dtypes, thread counts, step counts - for a
 * fixed number of iterations, every exact gradient compared with central
 * finite differences on the frozen Brownian path (float64), float32 against
 * float64, the adjoint against store-all. Run under AddressSanitizer too.
 * usage: test-soak [ITERATIONS] [SEED]    (prints the counts; exit 1 on a mismatch)
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nsde/nsde.h>

static uint64_t rng_state;
static uint64_t rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static int pick(int n)
{
  return (int)(rnd() % (uint64_t)n);
}
static double unif(double a, double b)
{
  return a + (b - a) * (double)(rnd() >> 11) / 9007199254740992.0;
}

/* f(t, x) = p0 tanh(x) + p1 x + p2 t (elementwise); g(t, x) = q0 sin(x) + q1 */
struct fn {
  double p[3];
  float pf[3];
  int is_f32;
};

#define EACH(T, ...)                                                                               \
  do {                                                                                             \
    if (u->is_f32) {                                                                               \
      typedef float T;                                                                             \
      const T *P = u->pf;                                                                          \
      __VA_ARGS__                                                                                  \
    } else {                                                                                       \
      typedef double T;                                                                            \
      const T *P = u->p;                                                                           \
      __VA_ARGS__                                                                                  \
    }                                                                                              \
  } while (0)

static int f_eval(void *user, double t, int64_t B, int64_t D, const void *x, void *out)
{
  struct fn *u = user;
  EACH(
      T, for (int64_t i = 0; i < B * D; i++) {
        const T xi = ((const T *)x)[i];
        ((T *)out)[i] = P[0] * (T)tanh(xi) + P[1] * xi + P[2] * (T)t;
      });
  return 0;
}

static int f_vjp(void *user, double t, int64_t B, int64_t D, const void *x, const void *v, void *gx,
                 void *gp)
{
  struct fn *u = user;
  EACH(T, {
    T s0 = 0, s1 = 0, s2 = 0;
    for (int64_t i = 0; i < B * D; i++) {
      const T xi = ((const T *)x)[i], vi = ((const T *)v)[i], th = (T)tanh(xi);
      ((T *)gx)[i] = vi * (P[0] * (1 - th * th) + P[1]);
      s0 += vi * th;
      s1 += vi * xi;
      s2 += vi * (T)t;
    }
    if (gp) {
      ((T *)gp)[0] += s0;
      ((T *)gp)[1] += s1;
      ((T *)gp)[2] += s2;
    }
  });
  return 0;
}

static int g_eval(void *user, double t, int64_t B, int64_t D, const void *x, void *out)
{
  struct fn *u = user;
  (void)t;
  EACH(T,
       for (int64_t i = 0; i < B * D; i++)((T *)out)[i] = P[0] * (T)sin(((const T *)x)[i]) + P[1];);
  return 0;
}

static int g_vjp(void *user, double t, int64_t B, int64_t D, const void *x, const void *v, void *gx,
                 void *gp)
{
  struct fn *u = user;
  (void)t;
  EACH(T, {
    T s0 = 0, s1 = 0;
    for (int64_t i = 0; i < B * D; i++) {
      const T xi = ((const T *)x)[i], vi = ((const T *)v)[i];
      ((T *)gx)[i] = vi * P[0] * (T)cos(xi);
      s0 += vi * (T)sin(xi);
      s1 += vi;
    }
    if (gp) {
      ((T *)gp)[0] += s0;
      ((T *)gp)[1] += s1;
    }
  });
  return 0;
}

static int g_diag(void *user, double t, int64_t B, int64_t D, const void *x, void *out)
{
  struct fn *u = user;
  (void)t;
  EACH(T, for (int64_t i = 0; i < B * D; i++)((T *)out)[i] = P[0] * (T)cos(((const T *)x)[i]););
  return 0;
}

static int g_diag_vjp(void *user, double t, int64_t B, int64_t D, const void *x, const void *v,
                      void *gx, void *gp)
{
  struct fn *u = user;
  (void)t;
  EACH(T, {
    T s0 = 0;
    for (int64_t i = 0; i < B * D; i++) {
      const T xi = ((const T *)x)[i], vi = ((const T *)v)[i];
      ((T *)gx)[i] = -vi * P[0] * (T)sin(xi);
      s0 += vi * (T)cos(xi);
    }
    if (gp)
      ((T *)gp)[0] += s0;
  });
  return 0;
}

struct problem {
  int noise, scheme, strategy, threads, steps, every, B, D, calculus;
  uint64_t seed;
  double x0[64], w[64], p[3], q[2];
};

/* L = sum w x(t1); its gradient with respect to x0 (gx), p (gp) and q (gq).
 * Returns NSDE_OK or the status. */
static enum nsde_status run(const struct problem *pb, enum nsde_dtype dt, double *L, double *gx,
                            double *gp, double *gq)
{
  struct nsde_context *ctx;
  struct fn uf = {{pb->p[0], pb->p[1], pb->p[2]},
                  {(float)pb->p[0], (float)pb->p[1], (float)pb->p[2]},
                  dt == NSDE_DTYPE_FLOAT32};
  struct fn ug = {
      {pb->q[0], pb->q[1], 0}, {(float)pb->q[0], (float)pb->q[1], 0}, dt == NSDE_DTYPE_FLOAT32};
  struct nsde_func_ops fo = {sizeof(fo), f_eval, f_vjp, NULL, NULL};
  struct nsde_func_ops go = {sizeof(go), g_eval, g_vjp, g_diag, g_diag_vjp};
  struct nsde_func *f = NULL, *g = NULL;
  struct nsde_sde *sde = NULL;
  struct nsde_solver *s = NULL;
  struct nsde_solver_config cfg;
  struct nsde_tensor *x = NULL, *w = NULL, *gi = NULL;
  int64_t shape[2] = {pb->B, pb->D}, n = pb->B * pb->D;
  double gpd[3] = {0}, gqd[2] = {0};
  float gpf[3] = {0}, gqf[2] = {0};
  enum nsde_status st;
  const int user_g = pb->noise == NSDE_NOISE_DIAGONAL || pb->noise == NSDE_NOISE_SCALAR;

  if (nsde_context_new(&ctx) != NSDE_OK)
    return NSDE_ERR_NOMEM;
  st = nsde_context_set_threads(ctx, pb->threads);
  if (st == NSDE_OK)
    st = nsde_func_new(ctx, dt, &fo, &uf, 3,
                       dt == NSDE_DTYPE_FLOAT32 ? (void *)uf.pf : (void *)uf.p, &f);
  if (st == NSDE_OK && user_g)
    st = nsde_func_new(ctx, dt, &go, &ug, 2,
                       dt == NSDE_DTYPE_FLOAT32 ? (void *)ug.pf : (void *)ug.p, &g);
  else if (st == NSDE_OK && pb->noise == NSDE_NOISE_ADDITIVE)
    st = nsde_func_new_additive(ctx, dt, pb->q[1], &g);
  if (st == NSDE_OK)
    st =
        nsde_sde_new(ctx, f, g, (enum nsde_noise)pb->noise, (enum nsde_calculus)pb->calculus, &sde);
  nsde_solver_config_init(&cfg);
  cfg.scheme = (enum nsde_scheme)pb->scheme;
  cfg.n_steps = pb->steps;
  cfg.t1 = 0.7;
  cfg.seed = pb->seed;
  cfg.grad = (enum nsde_grad_strategy)pb->strategy;
  cfg.checkpoint_every = pb->every;
  if (st == NSDE_OK)
    st = nsde_solver_new(sde, &cfg, 2, shape, &s);
  if (st == NSDE_OK)
    st = nsde_tensor_new(ctx, dt, 2, shape, &x);
  if (st == NSDE_OK)
    st = nsde_tensor_new(ctx, dt, 2, shape, &w);
  if (st == NSDE_OK)
    st = nsde_tensor_new(ctx, dt, 2, shape, &gi);
  if (st == NSDE_OK) {
    for (int64_t i = 0; i < n; i++) {
      if (dt == NSDE_DTYPE_FLOAT32) {
        ((float *)nsde_tensor_data(x))[i] = (float)pb->x0[i];
        ((float *)nsde_tensor_data(w))[i] = (float)pb->w[i];
      } else {
        ((double *)nsde_tensor_data(x))[i] = pb->x0[i];
        ((double *)nsde_tensor_data(w))[i] = pb->w[i];
      }
    }
    st = nsde_solve(s, x, NULL);
  }
  if (st == NSDE_OK) {
    *L = 0;
    for (int64_t i = 0; i < n; i++)
      *L += pb->w[i] * (dt == NSDE_DTYPE_FLOAT32 ? ((float *)nsde_tensor_data(x))[i]
                                                 : ((double *)nsde_tensor_data(x))[i]);
    if (gx)
      st =
          nsde_backward(s, w, NULL, gi, dt == NSDE_DTYPE_FLOAT32 ? (void *)gpf : (void *)gpd, 3,
                        g && user_g ? (dt == NSDE_DTYPE_FLOAT32 ? (void *)gqf : (void *)gqd) : NULL,
                        g && user_g ? 2 : 0);
  }
  if (st == NSDE_OK && gx) {
    for (int64_t i = 0; i < n; i++)
      gx[i] = dt == NSDE_DTYPE_FLOAT32 ? ((float *)nsde_tensor_data(gi))[i]
                                       : ((double *)nsde_tensor_data(gi))[i];
    for (int k = 0; k < 3; k++)
      gp[k] = dt == NSDE_DTYPE_FLOAT32 ? gpf[k] : gpd[k];
    for (int k = 0; k < 2; k++)
      gq[k] = dt == NSDE_DTYPE_FLOAT32 ? gqf[k] : gqd[k];
  }
  nsde_tensor_free(x);
  nsde_tensor_free(w);
  nsde_tensor_free(gi);
  nsde_solver_free(s);
  nsde_sde_free(sde);
  nsde_func_free(f);
  nsde_func_free(g);
  nsde_context_free(ctx);
  return st;
}

static double relerr(double a, double b, double scale)
{
  return fabs(a - b) / fmax(scale, fmax(fabs(a), fabs(b)));
}

int main(int argc, char **argv)
{
  const int iters = argc > 1 ? atoi(argv[1]) : 300;
  int done = 0, refused = 0, fd_checked = 0, f32_checked = 0, adj_checked = 0, bad = 0;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x9E3779B97F4A7C15ULL;
  if (iters < 1)
    return 2;
  for (int it = 0; it < iters; it++) {
    static const int noises[4] = {NSDE_NOISE_NONE, NSDE_NOISE_DIAGONAL, NSDE_NOISE_SCALAR,
                                  NSDE_NOISE_ADDITIVE};
    static const int strategies[4] = {NSDE_GRAD_STORE_ALL, NSDE_GRAD_CHECKPOINT,
                                      NSDE_GRAD_REVERSIBLE, NSDE_GRAD_ADJOINT};
    struct problem pb;
    double L, gx[64], gp[3], gq[2], L2, gx2[64], gp2[3], gq2[2];
    enum nsde_status st;
    memset(&pb, 0, sizeof(pb));
    pb.noise = noises[pick(4)];
    pb.scheme = pick(5);
    pb.strategy = strategies[pick(4)];
    pb.calculus = pb.scheme == NSDE_SCHEME_HEUN || pb.scheme == NSDE_SCHEME_REVERSIBLE_HEUN
                      ? NSDE_CALCULUS_STRATONOVICH
                      : NSDE_CALCULUS_ITO;
    pb.threads = 1 + pick(2);
    pb.steps = 1 + pick(12);
    pb.every = pick(4);
    pb.B = 1 + pick(5);
    pb.D = 1 + pick(7);
    pb.seed = rnd();
    for (int i = 0; i < pb.B * pb.D; i++) {
      pb.x0[i] = unif(-1.5, 1.5);
      pb.w[i] = unif(-1, 1);
    }
    pb.p[0] = unif(-1, 1);
    pb.p[1] = unif(-1, 0.5);
    pb.p[2] = unif(-1, 1);
    pb.q[0] = unif(-0.6, 0.6);
    pb.q[1] = unif(-0.5, 0.5);
    st = run(&pb, NSDE_DTYPE_FLOAT64, &L, gx, gp, gq);
    if (st == NSDE_ERR_UNSUPPORTED || st == NSDE_ERR_INVALID || st == NSDE_ERR_MISSING_OP) {
      refused++; /* a combination the library declines, with a status */
      continue;
    }
    if (st != NSDE_OK) {
      printf("FAIL iteration %d: status %s\n", it, nsde_status_str(st));
      bad++;
      continue;
    }
    done++;
    if (pb.strategy == NSDE_GRAD_ADJOINT) { /* approximate: against store-all, loosely, finite */
      struct problem ps = pb;
      ps.strategy = NSDE_GRAD_STORE_ALL;
      if (run(&ps, NSDE_DTYPE_FLOAT64, &L2, gx2, gp2, gq2) == NSDE_OK) {
        for (int i = 0; i < pb.B * pb.D; i++)
          if (!isfinite(gx[i]) || relerr(gx[i], gx2[i], 1.0) > 0.5) {
            printf("FAIL iteration %d: adjoint dL/dx0[%d] %g vs store-all %g\n", it, i, gx[i],
                   gx2[i]);
            bad++;
            break;
          }
        adj_checked++;
      }
      continue;
    }
    /* central differences on the same path, every x0 element and parameter */
    {
      const double h = 1e-6;
      for (int j = 0; j < pb.B * pb.D + 5; j++) {
        struct problem a = pb, b = pb;
        double La, Lb, num, ana;
        double *pa, *pbb;
        if (j < pb.B * pb.D) {
          pa = &a.x0[j];
          pbb = &b.x0[j];
          ana = gx[j];
        } else if (j < pb.B * pb.D + 3) {
          pa = &a.p[j - pb.B * pb.D];
          pbb = &b.p[j - pb.B * pb.D];
          ana = gp[j - pb.B * pb.D];
        } else {
          if (pb.noise != NSDE_NOISE_DIAGONAL && pb.noise != NSDE_NOISE_SCALAR)
            continue;
          pa = &a.q[j - pb.B * pb.D - 3];
          pbb = &b.q[j - pb.B * pb.D - 3];
          ana = gq[j - pb.B * pb.D - 3];
        }
        *pa += h;
        *pbb -= h;
        if (run(&a, NSDE_DTYPE_FLOAT64, &La, NULL, NULL, NULL) != NSDE_OK ||
            run(&b, NSDE_DTYPE_FLOAT64, &Lb, NULL, NULL, NULL) != NSDE_OK) {
          printf("FAIL iteration %d: a perturbed solve failed\n", it);
          bad++;
          break;
        }
        num = (La - Lb) / (2 * h);
        if (relerr(ana, num, 1.0) > 2e-5) {
          printf(
              "FAIL iteration %d (noise %d scheme %d strategy %d steps %d B %d D %d threads %d): "
              "derivative %d analytic %.10g numeric %.10g\n",
              it, pb.noise, pb.scheme, pb.strategy, pb.steps, pb.B, pb.D, pb.threads, j, ana, num);
          bad++;
          break;
        }
        fd_checked++;
      }
    }
    /* float32 against float64 */
    if (run(&pb, NSDE_DTYPE_FLOAT32, &L2, gx2, gp2, gq2) == NSDE_OK) {
      for (int i = 0; i < pb.B * pb.D; i++)
        if (relerr(gx[i], gx2[i], 1.0) > 2e-3) {
          printf("FAIL iteration %d: float32 dL/dx0[%d] %g vs float64 %g\n", it, i, gx2[i], gx[i]);
          bad++;
          break;
        }
      f32_checked++;
    }
  }
  printf(
      "# soak: %d iterations, %d solved and differentiated, %d combinations refused with a status, "
      "%d derivatives against finite differences, %d float32 runs against float64, %d adjoint runs "
      "against store-all, %d failures\n",
      iters, done, refused, fd_checked, f32_checked, adj_checked, bad);
  return bad ? 1 : 0;
}
