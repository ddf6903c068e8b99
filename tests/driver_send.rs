//! The one-task driver's future is `Send`: it runs inside `tokio::spawn` on a multi-thread runtime.
use prefetch_batch::{BatchExt, Config, timer::TokioTimer};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_task_driver_runs_inside_tokio_spawn() {
    let source = futures_util::stream::iter(0..1_000u32);
    let task = tokio::spawn(async move {
        let mut sum = 0u64;
        let mut batches = 0u32;
        source
            .for_each_batch(
                Config::<64>::new().max_wait(Duration::from_millis(5)),
                TokioTimer,
                |batch| {
                    batches += 1;
                    sum += batch.iter().map(|&x| u64::from(x)).sum::<u64>();
                    async move {
                        tokio::task::yield_now().await; // the batch is held across an await, on any worker
                        drop(batch);
                    }
                },
            )
            .await
            .unwrap();
        (batches, sum)
    });
    assert_eq!(task.await.unwrap(), (16, 999 * 1_000 / 2));
}
