/* file: test.c
 * coroutine_ucontext.c continuation.c could be fetched from spice or QEMU
 * source, use following command to compile:
 * gcc -o test test.c coroutine_ucontext.c continuation.c -DWITH_UCONTEXT
 */

#include <stdio.h>
#include "coroutine.h"

struct coroutine *co;

static void *coroutine_fun(void *data)
{
    while (1) {
        sleep(1);
        printf ("Yield to caller context\n");
        coroutine_yield(co);
        printf("\nI am in coroutine context\n");
    }
}

void coroutine_enter(void *data)
{
    while (1) {
        printf("Yield to coroutine context\n");
        coroutine_yieldto(co, data);
        printf("\nI am in caller context\n");
    }
}

static int coroutine_setup()
{
    co = malloc(sizeof(*co));

    co->stack_size = 16 << 20; /* 16Mb */
    co->entry = coroutine_fun;
    co->release = NULL;
    coroutine_init(co);

    return 0;
}

int main(int argc, char *argv[])
{
    coroutine_setup();
    coroutine_enter("coroutine");
    return 0;
}
