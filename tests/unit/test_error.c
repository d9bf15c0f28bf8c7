/* test_error.c — kmq_err (first error wins, one-line messages, where) and
 * the stable code names of docs/design.md. */
#include "kmq/error.h"
#include "testutil.h"

#include <check.h>
#include <string.h>

/* Every code and its name: summaries and run.json carry these strings, so
 * they never change once released. */
static const struct {
    kmq_status code;
    const char *name;
} names[] = {
    {KMQ_OK, "ok"},
    {KMQ_E_NOMEM, "out_of_memory"},
    {KMQ_E_ARG, "bad_argument"},
    {KMQ_E_CONFIG, "config"},
    {KMQ_E_NOT_FOUND, "not_found"},
    {KMQ_E_UNREADABLE, "unreadable"},
    {KMQ_E_DECODE, "decode_failed"},
    {KMQ_E_TOO_LARGE, "too_large"},
    {KMQ_E_UNSUPPORTED, "unsupported"},
    {KMQ_E_WRITE, "write_failed"},
    {KMQ_E_INTERRUPTED, "interrupted"},
    {KMQ_E_INTERNAL, "internal"},
    {KMQ_E_CHANGED, "file_changed"},
};

#define NNAMES (sizeof names / sizeof names[0])

START_TEST(stable_names)
{
    ck_assert_uint_eq(NNAMES, (size_t)KMQ_E_CHANGED + 1); /* every code is listed */
    for (size_t i = 0; i < NNAMES; i++) {
        ck_assert_str_eq(kmq_status_name(names[i].code), names[i].name);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(names[i].name, names[j].name);
    }
    /* A value outside the enum (a bug elsewhere) still gets a name. */
    ck_assert_str_eq(kmq_status_name((kmq_status)999), "internal");
}
END_TEST

START_TEST(first_error_wins)
{
    kmq_err err = {0};
    ck_assert_int_eq(kmq_err_set(&err, KMQ_E_CHANGED, "the file changed (size %d -> %d)", 1, 2),
                     KMQ_E_CHANGED);
    ck_assert_int_eq(kmq_err_set(&err, KMQ_E_DECODE, "later"), KMQ_E_DECODE);
    ck_assert_int_eq(err.code, KMQ_E_CHANGED);
    ck_assert_str_eq(err.msg, "the file changed (size 1 -> 2)");
    kmq_err_where(&err, "%s", "a.png");
    kmq_err_where(&err, "%s", "b.png");
    ck_assert_str_eq(err.where, "a.png");
    kmq_err_clear(&err);
    ck_assert_int_eq(err.code, KMQ_OK);
    ck_assert_str_eq(err.msg, "");
    ck_assert_str_eq(err.where, "");
    kmq_err_set(&err, KMQ_E_WRITE, "%s", "again");
    ck_assert_int_eq(err.code, KMQ_E_WRITE);
}
END_TEST

START_TEST(messages_are_one_line)
{
    kmq_err err = {0};
    kmq_err_set(&err, KMQ_E_DECODE, "%s", "VipsJpeg: bad\nVipsJpeg: worse\r\n  ");
    ck_assert_str_eq(err.msg, "VipsJpeg: bad VipsJpeg: worse");
    /* Long messages are cut to the buffer, never overrun it. */
    char longer[2000];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    kmq_err_clear(&err);
    kmq_err_set(&err, KMQ_E_ARG, "%s", longer);
    ck_assert_uint_eq(strlen(err.msg), sizeof err.msg - 1);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"stable_names", stable_names},
        {"first_error_wins", first_error_wins},
        {"messages_are_one_line", messages_are_one_line},
    };
    Suite *s = suite_create("error");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
