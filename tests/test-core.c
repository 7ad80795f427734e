/* Core: version, status, context, BLIS kernel choice. SPDX-License-Identifier: MIT */
#include "testutil.h"

#include "blis-private.h"

START_TEST(version)
{
  char buf[32];
  snprintf(buf, sizeof(buf), "%d.%d.%d", NSDE_VERSION_MAJOR, NSDE_VERSION_MINOR,
           NSDE_VERSION_MICRO);
  ck_assert_str_eq(nsde_version(), buf);
  ck_assert_str_eq(nsde_version(), NSDE_VERSION_STRING);
  ck_assert(NSDE_VERSION_AT_LEAST(0, 1, 0));
  ck_assert(!NSDE_VERSION_AT_LEAST(NSDE_VERSION_MAJOR + 1, 0, 0));
}
END_TEST

START_TEST(status_strings)
{
  static const int codes[] = {
#define X_(name, value, msg) name,
      NSDE_STATUS_LIST(X_)
#undef X_
  };
  static const char *msgs[] = {
#define X_(name, value, msg) msg,
      NSDE_STATUS_LIST(X_)
#undef X_
  };
  size_t n = sizeof(codes) / sizeof(codes[0]);
  ck_assert_int_eq(NSDE_OK, 0);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_le(codes[i], 0);
    ck_assert_str_eq(nsde_status_str((enum nsde_status)codes[i]), msgs[i]);
    for (size_t j = 0; j < i; j++) {
      ck_assert_int_ne(codes[i], codes[j]);
      ck_assert_str_ne(msgs[i], msgs[j]);
    }
  }
  ck_assert_str_eq(nsde_status_str((enum nsde_status)12345), "unknown status");
  ck_assert_str_eq(nsde_status_str((enum nsde_status) - 999), "unknown status");
}
END_TEST

struct logbuf {
  int calls;
  enum nsde_log_level level;
  char last[600];
};

static void log_cb(void *user, enum nsde_log_level level, const char *msg)
{
  struct logbuf *lb = user;
  lb->calls++;
  lb->level = level;
  snprintf(lb->last, sizeof(lb->last), "%s", msg);
}

START_TEST(context_basics)
{
  struct nsde_context *ctx = test_ctx();
  struct logbuf lb = {0};

  ck_assert_int_ge(nsde_context_threads(ctx), 1);
  ck_assert_int_eq(nsde_context_set_threads(ctx, 3), NSDE_OK);
  ck_assert_int_eq(nsde_context_threads(ctx), 3);
  ck_assert_int_eq(nsde_context_set_threads(ctx, -1), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_context_threads(ctx), 3);
  ck_assert_int_eq(nsde_context_last_status(ctx), NSDE_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "-1"));
  ck_assert_int_eq(nsde_context_set_threads(ctx, 100000), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_context_set_threads(ctx, 0), NSDE_OK);
  ck_assert_int_ge(nsde_context_threads(ctx), 1);
  nsde_context_clear_error(ctx);
  ck_assert_str_eq(nsde_context_last_error(ctx), "");
  ck_assert_int_eq(nsde_context_last_status(ctx), NSDE_OK);

  ck_assert_int_eq(nsde_context_set_log(ctx, log_cb, &lb, NSDE_LOG_DEBUG), NSDE_OK);
  ck_assert_int_ge(lb.calls, 1); /* the info line naming the BLIS kernels */
  ck_assert_ptr_nonnull(strstr(lb.last, nsde_blis_arch()) ? lb.last : strstr(lb.last, "BLIS"));
  lb.calls = 0;
  ck_assert_int_eq(nsde_context_set_threads(ctx, -5), NSDE_ERR_INVALID);
  ck_assert_int_eq(lb.calls, 1);
  ck_assert_int_eq(lb.level, NSDE_LOG_ERROR);
  ck_assert_ptr_nonnull(strstr(lb.last, "-5"));
  ck_assert_int_eq(nsde_context_set_log(ctx, log_cb, &lb, (enum nsde_log_level)7),
                   NSDE_ERR_INVALID);
  /* errors below the threshold are still recorded, just not logged */
  ck_assert_int_eq(nsde_context_set_log(ctx, NULL, NULL, NSDE_LOG_ERROR), NSDE_OK);
  lb.calls = 0;
  ck_assert_int_eq(nsde_context_set_threads(ctx, -6), NSDE_ERR_INVALID);
  ck_assert_int_eq(lb.calls, 0);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "-6"));
  nsde_context_free(ctx);
}
END_TEST

START_TEST(context_null)
{
  ck_assert_int_eq(nsde_context_new(NULL), NSDE_ERR_NULL);
  nsde_context_free(NULL);
  ck_assert_int_eq(nsde_context_set_threads(NULL, 1), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_context_threads(NULL), 0);
  ck_assert_int_eq(nsde_context_set_log(NULL, NULL, NULL, NSDE_LOG_INFO), NSDE_ERR_NULL);
  ck_assert_str_eq(nsde_context_last_error(NULL), "");
  ck_assert_int_eq(nsde_context_last_status(NULL), NSDE_OK);
  nsde_context_clear_error(NULL);
}
END_TEST

START_TEST(blis_arch_reported)
{
  const char *arch = nsde_blis_arch();
  const char *env = getenv("BLIS_ARCH_TYPE");
  ck_assert_ptr_nonnull(arch);
  ck_assert_int_gt((int)strlen(arch), 0);
  if (env)
    ck_assert_int_eq(nsde_blis_arch_choice(), NSDE_BLIS_CHOSEN_BY_USER);
  else
    ck_assert_int_ne(nsde_blis_arch_choice(), NSDE_BLIS_CHOSEN_BY_USER);
  /* libnsde restores the environment after forcing a choice */
  if (!env)
    ck_assert_ptr_null(getenv("BLIS_ARCH_TYPE"));
  printf("# BLIS kernels: %s (choice %d)\n", arch, (int)nsde_blis_arch_choice());
}
END_TEST

/* The kernel choice for CPUs other than this one. */
START_TEST(blis_pick_table)
{
  struct nsde__cpu zen5 = {NSDE__VENDOR_AMD, 0x1A, true, true, true, true, true, true};
  struct nsde__cpu zen4 = {NSDE__VENDOR_AMD, 0x19, true, true, true, true, true, true};
  struct nsde__cpu zen6_avx2 = {NSDE__VENDOR_AMD, 0x1B, true, true, false, false, false, false};
  struct nsde__cpu skx = {NSDE__VENDOR_INTEL, 6, true, true, true, true, true, true};
  struct nsde__cpu other_avx512 = {NSDE__VENDOR_OTHER, 7, true, true, true, true, true, true};
  struct nsde__cpu other_avx2 = {NSDE__VENDOR_OTHER, 7, true, true, false, false, false, false};
  struct nsde__cpu old = {NSDE__VENDOR_OTHER, 6, false, false, false, false, false, false};
  struct nsde__cpu partial512 = {NSDE__VENDOR_AMD, 0x1A, true, true, true, false, false, false};

  ck_assert(nsde__blis_knows(&zen4));
  ck_assert(nsde__blis_knows(&skx));
  ck_assert(!nsde__blis_knows(&other_avx2));
  ck_assert_int_eq(nsde__blis_pick(&zen4, true), NSDE__KEEP);
  ck_assert_int_eq(nsde__blis_pick(&skx, true), NSDE__KEEP);
  ck_assert_int_eq(nsde__blis_pick(&zen5, false), NSDE__SKX);
  ck_assert_int_eq(nsde__blis_pick(&zen6_avx2, false), NSDE__ZEN3);
  ck_assert_int_eq(nsde__blis_pick(&other_avx512, false), NSDE__SKX);
  ck_assert_int_eq(nsde__blis_pick(&other_avx2, false), NSDE__HASWELL);
  ck_assert_int_eq(nsde__blis_pick(&old, false), NSDE__KEEP);
  ck_assert_int_eq(nsde__blis_pick(&partial512, false), NSDE__ZEN3);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, version);
  tcase_add_test(tc, status_strings);
  tcase_add_test(tc, context_basics);
  tcase_add_test(tc, context_null);
  tcase_add_test(tc, blis_arch_reported);
  tcase_add_test(tc, blis_pick_table);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
