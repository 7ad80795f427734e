/*
 * The scheme registry (one line per scheme in NSDE__SCHEMES, scheme.h) and
 * the checks every scheme shares, with messages that name the schemes from
 * the registry rather than from a list written here.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "scheme.h"

#define DECLARE(value, name) extern const struct nsde__scheme nsde__scheme_##name;
NSDE__SCHEMES(DECLARE)
#undef DECLARE

static const struct nsde__scheme *const registry[] = {
#define ENTRY(value, name) [value] = &nsde__scheme_##name,
    NSDE__SCHEMES(ENTRY)
#undef ENTRY
};

#define N_SCHEMES ((int)(sizeof(registry) / sizeof(registry[0])))

const struct nsde__scheme *nsde__scheme_of(enum nsde_scheme scheme)
{
  return (int)scheme >= 0 && (int)scheme < N_SCHEMES ? registry[scheme] : NULL;
}

const char *nsde__scheme_names(char *buf, size_t cap, bool (*pred)(const struct nsde__scheme *))
{
  int k = 0, total = 0, used = 0;

  buf[0] = '\0';
  for (int i = 0; i < N_SCHEMES; i++)
    total += registry[i] && pred(registry[i]);
  for (int i = 0; i < N_SCHEMES && used >= 0 && (size_t)used < cap; i++) {
    if (!registry[i] || !pred(registry[i]))
      continue;
    k++;
    used += snprintf(buf + used, cap - (size_t)used, "%s%s",
                     k == 1       ? ""
                     : k == total ? " or "
                                  : ", ",
                     registry[i]->name);
  }
  return buf;
}

static bool is_ito(const struct nsde__scheme *sch)
{
  return sch->calculus == NSDE_CALCULUS_ITO;
}

static bool is_strat(const struct nsde__scheme *sch)
{
  return sch->calculus == NSDE_CALCULUS_STRATONOVICH;
}

bool nsde__scheme_reversible(const struct nsde__scheme *sch)
{
  return sch->reversible;
}

static bool has_general(const struct nsde__scheme *sch)
{
  return sch->general_noise;
}

enum nsde_status nsde__scheme_check(struct nsde_context *ctx, const struct nsde_sde *sde,
                                    enum nsde_scheme scheme)
{
  const struct nsde__scheme *sch = nsde__scheme_of(scheme);
  const bool commutes = sde->noise == NSDE_NOISE_NONE || sde->noise == NSDE_NOISE_ADDITIVE;
  char names[160];

  if (!sch)
    return nsde__error(ctx, NSDE_ERR_INVALID, "unknown scheme %d", (int)scheme);
  if (sde->noise == NSDE_NOISE_GENERAL && !sch->general_noise)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED, "general noise: %s, not %s",
                       nsde__scheme_names(names, sizeof(names), has_general), sch->name);
  if (sch->calculus != NSDE__ANY_CALCULUS && sde->calculus != (enum nsde_calculus)sch->calculus &&
      !commutes) {
    const bool ito = sch->calculus == NSDE_CALCULUS_ITO;
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED, "%s solves %s SDEs; this SDE is %s (use %s)",
                       sch->name, ito ? "Ito" : "Stratonovich", ito ? "Stratonovich" : "Ito",
                       nsde__scheme_names(names, sizeof(names), ito ? is_strat : is_ito));
  }
  return sch->check ? sch->check(ctx, sde) : NSDE_OK;
}
