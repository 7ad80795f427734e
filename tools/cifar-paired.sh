#!/bin/sh
# Paired comparisons on the same test images, from the predictions.csv
# (image,label,clean,ttn) and attack-images.csv (method,eps,image,correct)
# files that nsde-eval writes into each run directory NOISE-sSEED of
# tools/cifar-results.sh.
#
# Two models tested on the same images disagree on few of them; the standard
# error of their difference over the images is that of the per-image
# differences, sd(d) / sqrt(images), much smaller than the unpaired
# sqrt(2 p (1 - p) / images) of tools/cifar-summary.sh.
#  - TTN against the same model with the noise off, per model: the images
#    only TTN gets right (n01) and only the noise-off pass gets right (n10),
#    the gain (n01 - n10) / images, its paired SE and the exact two-sided
#    McNemar p (binomial, n01 of n01 + n10 at 1/2);
#  - per noise type, the mean over seeds of that gain per image;
#  - each SDE noise type against the ODE, noise off and TTN (an ODE's TTN is
#    its noise-off pass), and under each attack at each eps > 0 (runs with an
#    attack-images.csv): per image the SDE's correct fraction over its seeds
#    minus the ODE's, mean and SE over the images;
#  - under the corruptions (runs with a corruption-images.csv, severity,
#    family,passes,image,correct), per protocol (passes: 0 the noise off, more
#    the TTN ensemble) and severity: per image the SDE's correct fraction over
#    the families and its seeds minus the ODE's, and the SDE's drop from
#    severity 0 minus the ODE's (the paper expects it negative: the SDE loses
#    less);
#  - Fig. 4 (runs with a hidden-images.csv, curve,image,eps_0,eps_T): per image
#    the SDE's eps_T (mean over its seeds) minus the ODE's, for the SDE as it
#    runs and with its noise off; a smaller perturbation is better.
# The SE here is over the images only: it says whether these trained models
# differ beyond test-set sampling; the SE over seeds of tools/cifar-summary.sh
# says whether retraining would keep the difference.
# usage: tools/cifar-paired.sh OUT_DIR
set -eu
out=$1
files=""
for d in "$out"/*-s[0-9]*; do
  [ -f "$d/predictions.csv" ] && files="$files $d/predictions.csv"
  [ -f "$d/attack-images.csv" ] && files="$files $d/attack-images.csv"
  [ -f "$d/corruption-images.csv" ] && files="$files $d/corruption-images.csv"
  [ -f "$d/hidden-images.csv" ] && files="$files $d/hidden-images.csv"
done
[ -n "$files" ] || { echo "cifar-paired: no */predictions.csv in $out" >&2; exit 1; }
# shellcheck disable=SC2086 # the file list splits on blanks: run directories have none
awk -F, '
  FNR == 1 {
    run = FILENAME; sub(/\/[^\/]*$/, "", run); sub(/.*\//, "", run)
    noise = run; sub(/-s[0-9]+$/, "", noise)
    attack = FILENAME ~ /attack-images.csv$/
    corr = FILENAME ~ /corruption-images.csv$/
    hid = FILENAME ~ /hidden-images.csv$/
    if (attack) { aseeds[noise]++; next }
    if (corr) { cseeds[noise]++; next }
    if (hid) { hseeds[noise]++; next }
    nr++; rname[nr] = run; rnoise[nr] = noise
    if (!(noise in nseeds)) order[++nn] = noise
    nseeds[noise]++
    next
  }
  attack && $2 > 0 {
    key = $1 "@" $2
    if (!(key in kn)) korder[++nk] = key
    if (!((key, $3) in kimg)) { kimg[key, $3] = 1; kim[key, ++kn[key]] = $3 }
    as[noise, key, $3] += $4; acnt[noise, key]++
    next
  }
  attack { next }
  # Fig. 4: each image'"'"'s eps_T per curve (model: as it runs; noise-off)
  hid {
    key = "hidden eps_T (" $1 ")"
    if (!(key in hkn)) horder[++nh] = key
    if (!((key, $2) in himg)) { himg[key, $2] = 1; him[key, ++hkn[key]] = $2 }
    hs[noise, key, $2] += $4; hcnt[noise, key]++
    next
  }
  # corruptions: per protocol and image, severity 0 (family "none") and the
  # sums over families and seeds at each severity
  corr && $1 == 0 { z0[noise, $3, $4] += $5; n0[noise, $3, $4]++; next }
  corr {
    key = "corrupt(passes " $3 ")@" $1
    if (!(key in cn)) { corder[++nc] = key; cpass[key] = $3 }
    if (!((key, $4) in cimg)) { cimg[key, $4] = 1; cim[key, ++cn[key]] = $4 }
    zs[noise, key, $4] += $5; zn[noise, key, $4]++
    next
  }
  {
    img = $1; if (!(img in seen)) { seen[img] = 1; nimg++ }
    c0 = $3 == $2; ct = $4 < 0 ? c0 : $4 == $2
    n01[nr] += !c0 && ct; n10[nr] += c0 && !ct; cnt[nr]++
    # per image and noise type: sums over seeds of the correct flags
    s0[noise, img] += c0; st[noise, img] += ct
    g[noise, img] += ct - c0
  }
  # exact two-sided McNemar p: P(X <= min) * 2 for X ~ Binomial(m, 1/2)
  function mcnemar(a, b,   m, k, lc, t, p) {
    m = a + b; if (m == 0) return 1
    k = a < b ? a : b; lc = 0; p = 0
    for (t = 0; t <= k; t++) {
      if (t > 0) lc += log((m - t + 1) / t)
      p += exp(lc - m * log(2))
    }
    p *= 2
    return p > 1 ? 1 : p
  }
  # MEAN and SE (sd / sqrt(n)) of n per-image differences from their sum s
  # and sum of squares q
  function meanse(s, q, n) {
    MEAN = s / n; SE = sqrt((q / n - MEAN * MEAN) / (n - 1))
  }
  # the same over every image of the per-image values in array v (key prefix p)
  function msd(p, v,   k, x, s, q) {
    s = 0; q = 0
    for (k in seen) { x = v[p, k]; s += x; q += x * x }
    meanse(s, q, nimg)
  }
  function verdict(d, se, who) {
    return d > 2 * se ? who " better" : d < -2 * se ? who " worse" : "no difference"
  }
  # per SDE noise type, the rows of key: per image its value v[z, key, image]
  # (summed over its sd[z] seeds; cnt[z, key] values in all) minus the ODE'"'"'s
  # at okey, over the n[key] images im[key, 1..]; sign 1: larger is better
  function per_image(key, okey, n, im, v, cnt, sd, sign,   i, z, s, q, t, x) {
    if (n[key] < 2 || !(("ode", okey) in cnt) || cnt["ode", okey] != sd["ode"] * n[key]) return
    for (i = 1; i <= nn; i++) {
      z = order[i]
      if (z == "ode" || !((z, key) in cnt) || cnt[z, key] != sd[z] * n[key]) continue
      s = 0; q = 0
      for (t = 1; t <= n[key]; t++) {
        x = v[z, key, im[key, t]] / sd[z] - v["ode", okey, im[key, t]] / sd["ode"]
        s += x; q += x * x
      }
      meanse(s, q, n[key])
      printf "| %s, SDE - ODE (%d images) | %s (%d) | %d | %+.4f | %.4f | %s |\n", key, n[key], z, sd[z],
             sd["ode"], MEAN, 2 * SE, verdict(sign * MEAN, SE, "SDE")
    }
  }
  END {
    if (nimg < 2) { print "cifar-paired: fewer than 2 test images in " ARGV[1] > "/dev/stderr"; exit 1 }
    for (r = 1; r <= nr; r++)
      if (cnt[r] != nimg) {
        printf "cifar-paired: %s has %d images, the runs together %d: not the same test images\n",
               rname[r], cnt[r], nimg > "/dev/stderr"
        exit 1
      }
    printf "| model | images | only TTN right | only noise off right | TTN - noise off | paired SE | McNemar p |\n"
    printf "|---|---|---|---|---|---|---|\n"
    for (r = 1; r <= nr; r++) {
      if (rnoise[r] == "ode") continue
      meanse(n01[r] - n10[r], n01[r] + n10[r], cnt[r]) # per image +1, -1 or 0
      printf "| %s | %d | %d | %d | %+.4f | %.4f | %.3g |\n", rname[r], cnt[r], n01[r], n10[r], MEAN, SE,
             mcnemar(n01[r], n10[r])
    }
    printf "\n| comparison | SDE noise (seeds) | ODE seeds | difference | 2 paired SE images | verdict (images) |\n"
    printf "|---|---|---|---|---|---|\n"
    for (i = 1; i <= nn; i++) {
      z = order[i]; if (z == "ode") continue
      for (k in seen) gm[z, k] = g[z, k] / nseeds[z]
      msd(z, gm)
      printf "| ttn_gain (TTN - noise off) | %s (%d) | - | %+.4f | %.4f | %s |\n", z, nseeds[z], MEAN, 2 * SE,
             verdict(MEAN, SE, "TTN")
      if (!("ode" in nseeds)) continue
      for (k in seen) {
        d0[z, k] = s0[z, k] / nseeds[z] - s0["ode", k] / nseeds["ode"]
        dt[z, k] = st[z, k] / nseeds[z] - s0["ode", k] / nseeds["ode"]
      }
      msd(z, d0)
      printf "| clean (noise off), SDE - ODE | %s (%d) | %d | %+.4f | %.4f | %s |\n", z, nseeds[z], nseeds["ode"],
             MEAN, 2 * SE, verdict(MEAN, SE, "SDE")
      msd(z, dt)
      printf "| TTN, SDE - ODE | %s (%d) | %d | %+.4f | %.4f | %s |\n", z, nseeds[z], nseeds["ode"],
             MEAN, 2 * SE, verdict(MEAN, SE, "SDE")
    }
    # attacks: every run of a noise type must hold every image of the key
    for (j = 1; j <= nk; j++)
      per_image(korder[j], korder[j], kn, kim, as, acnt, aseeds, 1)
    # Fig. 4: eps_T, SDE - ODE per image, each SDE curve against the ODE'"'"'s
    # (its only curve, "model"); a smaller perturbation is better
    for (j = 1; j <= nh; j++)
      per_image(horder[j], "hidden eps_T (model)", hkn, him, hs, hcnt, hseeds, -1)
    # corruptions: accuracy and drop from severity 0, SDE - ODE per image
    for (j = 1; j <= nc; j++) {
      key = corder[j]; pp = cpass[key]
      if (cn[key] < 2 || !("ode" in cseeds)) continue
      for (i = 1; i <= nn; i++) {
        z = order[i]
        if (z == "ode" || !(z in cseeds)) continue
        s = 0; q = 0; s2 = 0; q2 = 0; ok = 1
        for (t = 1; t <= cn[key]; t++) {
          im = cim[key, t]
          if (!zn[z, key, im] || !zn["ode", key, im] || !n0[z, pp, im] || !n0["ode", pp, im]) { ok = 0; break }
          az = zs[z, key, im] / zn[z, key, im]; ao = zs["ode", key, im] / zn["ode", key, im]
          x = az - ao; s += x; q += x * x
          y = (z0[z, pp, im] / n0[z, pp, im] - az) - (z0["ode", pp, im] / n0["ode", pp, im] - ao)
          s2 += y; q2 += y * y
        }
        if (!ok) continue
        meanse(s, q, cn[key])
        printf "| %s, SDE - ODE (%d images) | %s (%d) | %d | %+.4f | %.4f | %s |\n", key, cn[key], z, cseeds[z],
               cseeds["ode"], MEAN, 2 * SE, verdict(MEAN, SE, "SDE")
        meanse(s2, q2, cn[key])
        printf "| %s drop from severity 0, SDE - ODE | %s (%d) | %d | %+.4f | %.4f | %s |\n", key, z, cseeds[z],
               cseeds["ode"], MEAN, 2 * SE, (MEAN < -2 * SE ? "SDE loses less" : (MEAN > 2 * SE ? "SDE loses more" : "no difference"))
      }
    }
  }' $files
