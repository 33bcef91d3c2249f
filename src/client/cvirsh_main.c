/* cvirsh: the command line of cvirtd, compatible with virsh. */
#include "client/cvirsh.h"

int main(int argc, char **argv)
{
    return cvirsh_main(argc, argv);
}
