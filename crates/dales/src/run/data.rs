//! The data of a run: the configured dataset (or the task's generated examples) as the tasks
//! the model trains and is evaluated on.

use dales_data::task::Task;
use dales_data::{DEFAULT_DATA_DIR, MnistLike};

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::learner::ModelSpec;

/// What a run trains on and what it evaluates each epoch.
#[derive(Debug)]
pub struct Dataset {
    /// Training examples.
    pub train: Box<dyn Task>,
    /// Evaluated after every epoch (the test set, or the validation split).
    pub eval: Box<dyn Task>,
    /// `test` or `validation`.
    pub eval_name: String,
    /// Mean pixel of the training images (`None` for generated data).
    pub pixel_mean: Option<f64>,
}

impl Dataset {
    /// Load the configured dataset (default Fashion-MNIST) with the configured validation
    /// split, or generate the task's examples.
    pub fn load<M: ModelSpec>(config: &TrainConfig<M>) -> Result<Dataset> {
        if let Some((train, test)) = config.model.generated()? {
            if config.data.validation > 0 {
                return Err(Error::config(
                    "data.validation",
                    config.data.validation,
                    "0: a task that generates its examples is evaluated on its own test \
                     sequences",
                ));
            }
            if let Some(n) = config.data.limit_train {
                return Err(Error::config(
                    "data.limit_train",
                    n,
                    "absent: a task that generates its examples trains on all of them",
                ));
            }
            if let Some(augment) = &config.data.augment {
                augment.check(None)?;
            }
            return Ok(Dataset {
                train,
                eval: test,
                eval_name: "test".into(),
                pixel_mean: None,
            });
        }
        let data = match &config.data.dir {
            Some(dir) => MnistLike::load_dir(dir)?,
            None => MnistLike::load_default()?,
        };
        config.model.check_data(&data)?;
        let (train, eval, eval_name) = if config.data.validation > 0 {
            let (train, val) = data
                .train
                .split_validation(config.data.validation, config.seed)?;
            (train, val, "validation")
        } else {
            (data.train, data.test, "test")
        };
        let train = match config.data.limit_train {
            Some(n) if n > train.len() => {
                return Err(Error::config(
                    "data.limit_train",
                    n,
                    format!("at most the {} training images", train.len()),
                ));
            }
            Some(n) => train.subset(&(0..n).collect::<Vec<_>>()),
            None => train,
        };
        let dataset = Dataset {
            pixel_mean: Some(train.pixel_mean()),
            train: config.model.task(train)?,
            eval: config.model.task(eval)?,
            eval_name: eval_name.into(),
        };
        if let Some(augment) = &config.data.augment {
            augment.check(dataset.train.image_shape())?;
        }
        Ok(dataset)
    }

    /// Where the data come from, for messages: the dataset directory, or the task that
    /// generates them.
    pub fn describe<M: ModelSpec>(config: &TrainConfig<M>) -> String {
        if let Some(generated) = config.model.generated_description() {
            return generated;
        }
        config
            .data
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())
    }
}
