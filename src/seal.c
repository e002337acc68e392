/* placeholder */
#include "seal.h"
