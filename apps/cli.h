/* Command lines of the programs: one option table per program drives
 * getopt_long (--opt value, --opt=value, -- ends the options), --help, and
 * the man page that the build generates with the hidden --man, so the three
 * cannot drift apart. Exit statuses: 0 success, 1 a runtime failure, 2 a
 * usage error (one line on stderr naming the argument, "try --help").
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_APPS_CLI_H
#define NSDE_APPS_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nsde/nsde.h>

#define CLI_MAX_OPTS 64
#ifndef NSDE_MAN_DATE
#define NSDE_MAN_DATE "" /* meson.build passes the release date */
#endif

struct cli_opt {
  const char *name;  /* long name, without the dashes */
  const char *arg;   /* the value's name in the help ("N"), NULL for a flag */
  const char *group; /* heading it is listed under: Data, Model, Training, ... */
  const char *help;  /* one line */
  const char *def;   /* the default, NULL when there is none */
};

struct cli_prog {
  const char *name;        /* "nsde-train" */
  const char *synopsis;    /* after the name: "--out MODEL [OPTION]..." */
  const char *summary;     /* what it does, in one line (the man page's NAME) */
  const char *about;       /* two more lines of description */
  const char *examples[4]; /* command lines, NULL-terminated */
  const char *notes;       /* an extra paragraph (the man page's NOTES), or NULL */
  const struct cli_opt *opts;
  int n_opts;
};

enum { CLI_HELP = 1000, CLI_VERSION, CLI_MAN };

__attribute__((format(printf, 2, 3), noreturn)) static inline void
cli_usage_error(const struct cli_prog *p, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", p->name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "; try '%s --help'\n", p->name);
  exit(2);
}

static inline int cli_upper(int c)
{
  return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* Print @p text from column @p indent to column 79, breaking at spaces; a
 * label longer than its column (@p own_line) puts the text on the next line. */
static inline void cli_wrap(const char *text, int indent, int own_line)
{
  int col = indent;
  if (own_line)
    printf("\n%*s", indent, "");
  else
    printf("  ");
  while (*text) {
    int len = (int)strcspn(text, " ");
    if (col > indent && col + 1 + len > 79) {
      printf("\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      putchar(' ');
      col++;
    }
    printf("%.*s", len, text);
    col += len;
    text += len;
    text += strspn(text, " ");
  }
  putchar('\n');
}

/* The option groups in the order of their first option (at most 16). */
static inline int cli_groups(const struct cli_prog *p, const char *groups[16])
{
  int ng = 0;
  for (int i = 0; i < p->n_opts; i++) {
    int k = 0;
    while (k < ng && strcmp(groups[k], p->opts[i].group))
      k++;
    if (k == ng && ng < 16)
      groups[ng++] = p->opts[i].group;
  }
  return ng;
}

/* Print "--name ARG" into buf. */
static inline int cli_label(const struct cli_opt *o, char *buf, size_t n)
{
  return snprintf(buf, n, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

static inline void cli_help(const struct cli_prog *p)
{
  const char *groups[16];
  int ng = 0, width = 0;
  char label[96], text[512];

  printf("Usage: %s %s\n%c%s.\n%s\n", p->name, p->synopsis, cli_upper(p->summary[0]),
         p->summary + 1, p->about);
  ng = cli_groups(p, groups);
  for (int i = 0; i < p->n_opts; i++) {
    int len = cli_label(&p->opts[i], label, sizeof(label));
    width = len > width && len <= 30 ? len : width;
  }
  for (int k = 0; k < ng; k++) {
    printf("\n%s:\n", groups[k]);
    for (int i = 0; i < p->n_opts; i++) {
      const struct cli_opt *o = &p->opts[i];
      if (strcmp(o->group, groups[k]))
        continue;
      cli_label(o, label, sizeof(label));
      snprintf(text, sizeof(text), "%s%s%s%s", o->help, o->def ? " (default: " : "",
               o->def ? o->def : "", o->def ? ")" : "");
      printf("  %-*s", width, label);
      cli_wrap(text, width + 4, width < (int)strlen(label));
    }
  }
  printf("\nGeneral:\n  %-*s  %s\n  %-*s  %s\n", width, "--help", "print this help and exit", width,
         "--version", "print the program's and the library's versions and exit");
  printf("\nExamples:\n");
  for (int i = 0; i < 4 && p->examples[i]; i++)
    printf("  %s\n", p->examples[i]);
  if (p->notes)
    printf("\n%s\n", p->notes);
  printf("\nExit status: 0 success, 1 a runtime failure (data, files, numerics),\n"
         "2 a usage error. Manual: man %s; libnsde %s.\n",
         p->name, NSDE_VERSION_STRING);
}

/* roff text with backslashes, dashes and leading dots escaped. */
static inline void cli_roff(const char *s)
{
  if (*s == '.' || *s == '\'')
    fputs("\\&", stdout);
  for (; *s; s++) {
    if (*s == '\\')
      fputs("\\e", stdout);
    else if (*s == '-')
      fputs("\\-", stdout);
    else
      putchar(*s);
  }
}

static inline void cli_man(const struct cli_prog *p)
{
  const char *groups[16];
  int ng = 0;

  printf(".TH ");
  for (const char *c = p->name; *c; c++)
    putchar(cli_upper(*c));
  printf(" 1 \"%s\" \"libnsde %s\" \"User Commands\"\n.SH NAME\n", NSDE_MAN_DATE,
         NSDE_VERSION_STRING);
  cli_roff(p->name);
  printf(" \\- ");
  cli_roff(p->summary);
  printf("\n.SH SYNOPSIS\n.B ");
  cli_roff(p->name);
  printf("\n");
  cli_roff(p->synopsis);
  printf("\n.SH DESCRIPTION\n%c", cli_upper(p->summary[0]));
  cli_roff(p->summary + 1);
  printf(".\n");
  cli_roff(p->about);
  printf("\n.SH OPTIONS\n");
  ng = cli_groups(p, groups);
  for (int k = 0; k < ng; k++) {
    printf(".SS ");
    cli_roff(groups[k]);
    printf("\n");
    for (int i = 0; i < p->n_opts; i++) {
      const struct cli_opt *o = &p->opts[i];
      if (strcmp(o->group, groups[k]))
        continue;
      printf(".TP\n.BR \\-\\-");
      cli_roff(o->name);
      if (o->arg) {
        printf(" \" \" \"");
        cli_roff(o->arg);
        printf("\"");
      }
      printf("\n");
      cli_roff(o->help);
      if (o->def) {
        printf(" (default: ");
        cli_roff(o->def);
        printf(")");
      }
      printf(".\n");
    }
  }
  printf(".SS General\n.TP\n.B \\-\\-help\nPrint the help and exit.\n.TP\n.B \\-\\-version\n"
         "Print the program's and the library's versions and exit.\n.SH EXAMPLES\n");
  for (int i = 0; i < 4 && p->examples[i]; i++) {
    printf(".PP\n.nf\n");
    cli_roff(p->examples[i]);
    printf("\n.fi\n");
  }
  if (p->notes) {
    printf(".SH NOTES\n");
    cli_roff(p->notes);
    printf("\n");
  }
  printf(".SH EXIT STATUS\n.TP\n.B 0\nSuccess.\n.TP\n.B 1\nA runtime failure: data that cannot "
         "be read, a file that cannot be written, a numerical failure; one line on stderr says "
         "what.\n.TP\n.B 2\nA usage error: one line on stderr names the argument.\n"
         ".SH SEE ALSO\n.BR nsde\\-train (1),\n.BR nsde\\-eval (1),\n.BR libnsde (3)\n");
}

/* The next option of the command line: its "--name" in *name and its value
 * (NULL for a flag) in *val; 0 when the options are done. --help,
 * --version and --man print and exit 0; a usage error exits 2. Arguments
 * that are not options are refused (the programs take none). */
static inline int cli_next(const struct cli_prog *p, int argc, char **argv, const char **name,
                           const char **val)
{
  static struct option lo[CLI_MAX_OPTS + 4];
  static char label[80];
  int k;

  if (!lo[0].name) {
    const int n = p->n_opts;
    if (n > CLI_MAX_OPTS) { /* a table this header cannot hold: a bug, not a usage error */
      fprintf(stderr, "%s: %d options, more than CLI_MAX_OPTS (%d)\n", p->name, n, CLI_MAX_OPTS);
      exit(1);
    }
    for (int i = 0; i < n; i++)
      lo[i] = (struct option){p->opts[i].name, p->opts[i].arg ? required_argument : no_argument,
                              NULL, i};
    lo[n] = (struct option){"help", no_argument, NULL, CLI_HELP};
    lo[n + 1] = (struct option){"version", no_argument, NULL, CLI_VERSION};
    lo[n + 2] = (struct option){"man", no_argument, NULL, CLI_MAN};
    opterr = 0;
  }
  k = getopt_long(argc, argv, ":", lo, NULL);
  if (k == -1) {
    if (optind < argc)
      cli_usage_error(p, "unexpected argument '%s' (the options all start with --)", argv[optind]);
    return 0;
  }
  if (k == CLI_HELP || k == CLI_VERSION || k == CLI_MAN) {
    if (k == CLI_HELP)
      cli_help(p);
    else if (k == CLI_VERSION)
      printf("%s (libnsde) %s\nlibrary %s\n", p->name, NSDE_VERSION_STRING, nsde_version());
    else
      cli_man(p);
    exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1);
  }
  if (k == ':')
    cli_usage_error(p, "option '%s' needs a value", argv[optind - 1]);
  if (k == '?' || k < 0 || k >= p->n_opts)
    cli_usage_error(p, "unknown option '%s'", argv[optind - 1]);
  snprintf(label, sizeof(label), "--%s", p->opts[k].name);
  *name = label;
  *val = optarg;
  return 1;
}

#endif
