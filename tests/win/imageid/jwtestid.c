/* The image of wine.real.imageid that carries a version resource
 * (jwtestid.rc): its fields are asserted exactly. It does nothing. */
int main(void) {
  return 0;
}
