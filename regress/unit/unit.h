/*
 * cmocka needs these before its header. Include this after the project's
 * headers: cmocka defines function-like macros (fail, skip) that would
 * otherwise rewrite member names in them.
 */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include <cmocka.h>
}
